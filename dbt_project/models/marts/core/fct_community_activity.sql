{{
    config(
        materialized='incremental',
        unique_key='community_activity_key',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook=[
            "{% if is_incremental() %}delete from {{ this }} where"
            " (activity_type = 'post_created' and source_id not in (select community_post_id"
            " from {{ ref('stg_platform__community_posts') }} where quarantine_reason is null))"
            " or (activity_type = 'member_joined' and source_id not in (select community_member_id"
            " from {{ ref('stg_platform__community_members') }} where quarantine_reason is null))"
            " or (activity_type = 'member_left' and source_id not in (select community_member_id"
            " from {{ ref('stg_platform__community_members') }}"
            " where quarantine_reason is null and left_at is not null)){% endif %}"
        ]
    )
}}
-- depends_on: {{ ref('snap_platform__users') }}
-- Grain: one row per community event: a post written, a member joining, a member leaving.
-- Incremental: a run rebuilds the events of the posts and memberships that landed since the
-- last build, and of the users (users_touched_since_last_build: person), communities and
-- tenants (time zone) that landed; the post-hook deletes the events whose post or membership is
-- no longer usable, or whose member no longer left.
with

{% if is_incremental() %}
touched_users as (
    {{ users_touched_since_last_build() }}
),

-- The communities that landed and those of the tenants that landed.
touched_communities as (
    select communities.id as community_id
    from {{ source('platform', 'communities') }} as communities
    where
        communities.id in ({{ landed_since_last_build('communities') }})
        or communities.tenant_id in ({{ landed_since_last_build('tenants') }})
),

{% endif %}
posts as (
    select * from {{ ref('stg_platform__community_posts') }}
    where quarantine_reason is null
    {% if is_incremental() %}
        and (
            community_post_id in ({{ landed_since_last_build('community_posts') }})
            or author_user_id in (select touched_users.user_id from touched_users)
            or community_id in (select touched_communities.community_id from touched_communities)
        )
    {% endif %}
),

members as (
    select * from {{ ref('stg_platform__community_members') }}
    where quarantine_reason is null
    {% if is_incremental() %}
        and (
            community_member_id in ({{ landed_since_last_build('community_members') }})
            or user_id in (select touched_users.user_id from touched_users)
            or community_id in (select touched_communities.community_id from touched_communities)
        )
    {% endif %}
),

-- The tenant and community keys are hashed once per community here, not once per event (same
-- keys: the join below is on equality).
communities as (
    select
        community_id,
        tenant_id,
        {{ surrogate_key(['tenant_id']) }} as tenant_key,
        {{ surrogate_key(['community_id']) }} as community_key
    from {{ ref('stg_platform__communities') }}
),

calendars as (
    select * from {{ ref('int_tenant_calendars') }}
),

events as (
    select
        'post_created' as activity_type,
        community_post_id as source_id,
        community_id,
        author_person_id as person_id,
        created_at as occurred_at
    from posts
    union all
    select
        'member_joined' as activity_type,
        community_member_id as source_id,
        community_id,
        person_id,
        joined_at as occurred_at
    from members
    union all
    select
        'member_left' as activity_type,
        community_member_id as source_id,
        community_id,
        person_id,
        left_at as occurred_at
    from members
    where left_at is not null
),

final as (
    select
        {{ surrogate_key(['events.activity_type', 'events.source_id']) }} as community_activity_key,
        events.activity_type,
        events.source_id,
        communities.tenant_id,
        communities.tenant_key,
        events.community_id,
        communities.community_key,
        {{ surrogate_key(['events.person_id']) }} as person_key,
        events.occurred_at,
        cast({{ utc_to_local('events.occurred_at', 'calendars.reporting_timezone') }} as date)
            as occurred_date
    from events
    inner join communities on events.community_id = communities.community_id
    inner join calendars on communities.tenant_id = calendars.tenant_id
)

select * from final
