-- The metrics' as-of time: var `as_of` when given, else the latest source timestamp observed
-- in raw (the newest event, update or refund the warehouse has seen). A one-row table: the
-- marts and fct_course_listing read it.
-- It reads the raw tables themselves: their staging views keep every raw row (one row each,
-- checked by the accounts_for_every_raw_row checks) and pass these columns through unchanged,
-- except payments.created_at, a LOCAL column converted here exactly as stg_platform__payments
-- converts it. Through the views, every maximum also paid for their joins (person resolution,
-- parents, enum mappings): most of this model's cost, on every build that loaded anything.
{{ config(materialized='table') }}
with

observed as (
    select max(updated_at) as observed_at from {{ source('platform', 'payments') }}
    union all
    select max({{ new_york_to_utc('created_at') }}) from {{ source('platform', 'payments') }}
    union all
    select max(created_at) from {{ source('platform', 'refunds') }}
    union all
    select max(updated_at) from {{ source('platform', 'payouts') }}
    union all
    select max(updated_at) from {{ source('platform', 'enrollments') }}
    union all
    select max(updated_at) from {{ source('platform', 'field_service_orders') }}
    union all
    select max(updated_at) from {{ source('platform', 'courses') }}
    union all
    select max(occurred_at) from {{ source('platform', 'activity_logs') }}
),

as_of as (
    select
        coalesce({{ as_of_override() }}, max(observed_at)) as as_of_at,
        {{ as_of_override() }} is not null as is_as_of_overridden
    from observed
)

select * from as_of
