{{
    config(
        materialized='incremental',
        unique_key='activity_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}
-- depends_on: {{ ref('snap_platform__users') }}
-- Grain: one row per usable activity log entry. The biggest table: activity_logs is append-only
-- with an id cursor, so an incremental run reads the ids above the highest one already loaded,
-- plus all activity of the users and tenants that landed since the last build (and of the
-- accounts whose person they may move): the rows held back as orphans until their user arrived,
-- and rows whose person or local date that change moves.

with

{% if is_incremental() %}
touched_users as (
    {{ users_touched_since_last_build() }}
),

landed_tenants as (
    {{ landed_since_last_build('tenants') }}
),

{% endif %}
activity as (
    select * from {{ ref('stg_platform__activity_logs') }}
    where quarantine_reason is null
    {% if is_incremental() %}
        and (
            activity_id > (select coalesce(max(activity_id), 0) from {{ this }})
            or user_id in (select touched_users.user_id from touched_users)
            or tenant_id in (select landed_tenants.id from landed_tenants)
        )
    {% endif %}
),

people as (
    select
        user_id,
        person_id
    from {{ ref('stg_platform__users') }}
),

-- The tenant key is hashed once per tenant here, not once per activity row (same key: the join
-- below is on equality).
calendars as (
    select
        tenant_id,
        {{ surrogate_key(['tenant_id']) }} as tenant_key,
        reporting_timezone
    from {{ ref('int_tenant_calendars') }}
),

final as (
    select
        activity.activity_id,
        activity.tenant_id,
        calendars.tenant_key,
        activity.user_id,
        {{ surrogate_key(['people.person_id']) }} as person_key,
        activity.course_id,
        case when activity.course_id is not null then {{ surrogate_key(['activity.course_id']) }} end
            as course_key,
        activity.activity_type,
        activity.occurred_at,
        cast({{ utc_to_local('activity.occurred_at', 'calendars.reporting_timezone') }} as date)
            as occurred_date
    from activity
    inner join people on activity.user_id = people.user_id
    inner join calendars on activity.tenant_id = calendars.tenant_id
)

select * from final
