{{
    config(
        materialized='incremental',
        unique_key=['user_id', 'course_id'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}
-- Grain: one row per user x course with learning activity: its first and last activity and how
-- many. Incremental: activity is append-only (fct_learning_activity only adds ids above the
-- highest one it holds), so a run folds the activity above the highest id counted here into
-- the stored rows of the same user and course instead of re-reading all of it.
with

activity as (
    select
        activity_id,
        user_id,
        course_id,
        occurred_at
    from {{ ref('fct_learning_activity') }}
    where course_id is not null
    {% if is_incremental() %}
        and activity_id > (select coalesce(max(last_activity_id), 0) from {{ this }})
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

-- What the table holds already (nothing on a full build).
stored as (
    {% if is_incremental() %}
        select * from {{ this }}
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
