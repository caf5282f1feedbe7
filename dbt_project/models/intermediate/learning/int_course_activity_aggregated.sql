{{
    config(
        materialized='incremental',
        unique_key=['user_id', 'course_id'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}
-- Grain: one row per user x course with learning activity: its first and last activity and how
-- many. Incremental: activity is append-only, so a run folds the activity above the highest id
-- counted here into the stored rows of the same user and course instead of re-reading all of
-- it. The users and tenants that landed since the last build are the exception:
-- fct_learning_activity re-derived all their activity, including rows below that id it held
-- back as orphans until their user arrived, so their groups are counted again from the fact.
with

{% if is_incremental() %}
landed_users as (
    {{ landed_since_last_build('users') }}
),

landed_tenants as (
    {{ landed_since_last_build('tenants') }}
),

recounted as (
    select distinct
        user_id,
        course_id
    from {{ ref('fct_learning_activity') }}
    where
        course_id is not null
        and (
            user_id in (select landed_users.id from landed_users)
            or tenant_id in (select landed_tenants.id from landed_tenants)
        )
),

{% endif %}
activity as (
    select
        activity.activity_id,
        activity.user_id,
        activity.course_id,
        activity.occurred_at
    from {{ ref('fct_learning_activity') }} as activity
    {% if is_incremental() %}
        left join recounted
            on activity.user_id = recounted.user_id and activity.course_id = recounted.course_id
    {% endif %}
    where activity.course_id is not null
    {% if is_incremental() %}
        and (
            activity.activity_id > (select coalesce(max(last_activity_id), 0) from {{ this }})
            or recounted.user_id is not null
        )
    {% endif %}
),

aggregated as (
    select
        user_id,
        course_id,
        min(occurred_at) as first_activity_at,
        max(occurred_at) as last_activity_at,
        count(*) as activity_count,
        max(activity_id) as last_activity_id
    from activity
    group by user_id, course_id
),

-- What the table holds already, except the groups counted again (nothing on a full build).
stored as (
    {% if is_incremental() %}
        select stored.*
        from {{ this }} as stored
        left join recounted
            on stored.user_id = recounted.user_id and stored.course_id = recounted.course_id
        where recounted.user_id is null
    {% else %}
        select * from aggregated
        where 1 = 0
    {% endif %}
),

combined as (
    select
        aggregated.user_id,
        aggregated.course_id,
        case
            when stored.first_activity_at < aggregated.first_activity_at then stored.first_activity_at
            else aggregated.first_activity_at
        end as first_activity_at,
        case
            when stored.last_activity_at > aggregated.last_activity_at then stored.last_activity_at
            else aggregated.last_activity_at
        end as last_activity_at,
        aggregated.activity_count + coalesce(stored.activity_count, 0) as activity_count,
        aggregated.last_activity_id
    from aggregated
    left join stored
        on aggregated.user_id = stored.user_id and aggregated.course_id = stored.course_id
)

select * from combined
