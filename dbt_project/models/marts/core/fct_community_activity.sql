-- Grain: one row per community event: a post written, a member joining, a member leaving.
with

posts as (
    select * from {{ ref('stg_platform__community_posts') }}
    where quarantine_reason is null
),

members as (
    select * from {{ ref('stg_platform__community_members') }}
    where quarantine_reason is null
),

communities as (
    select
        community_id,
        tenant_id
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
        {{ surrogate_key(['communities.tenant_id']) }} as tenant_key,
        events.community_id,
        {{ surrogate_key(['events.community_id']) }} as community_key,
        {{ surrogate_key(['events.person_id']) }} as person_key,
        events.occurred_at,
        cast({{ utc_to_local('events.occurred_at', 'calendars.reporting_timezone') }} as date)
            as occurred_date
    from events
    inner join communities on events.community_id = communities.community_id
    inner join calendars on communities.tenant_id = calendars.tenant_id
)

select * from final
