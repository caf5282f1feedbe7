-- The metrics' as-of time: var `as_of` when given, else the latest source timestamp observed
-- in raw (the newest event, update or refund the warehouse has seen). A one-row table: the
-- marts and fct_course_listing read it, and it scans every fact-like staging view.
{{ config(materialized='table') }}
with

observed as (
    select max(updated_at) as observed_at from {{ ref('stg_platform__payments') }}
    union all
    select max(created_at) from {{ ref('stg_platform__payments') }}
    union all
    select max(created_at) from {{ ref('stg_platform__refunds') }}
    union all
    select max(updated_at) from {{ ref('stg_platform__payouts') }}
    union all
    select max(updated_at) from {{ ref('stg_platform__enrollments') }}
    union all
    select max(updated_at) from {{ ref('stg_platform__field_service_orders') }}
    union all
    select max(updated_at) from {{ ref('stg_platform__courses') }}
    union all
    select max(occurred_at) from {{ ref('stg_platform__activity_logs') }}
),

as_of as (
    select
        coalesce({{ as_of_override() }}, max(observed_at)) as as_of_at,
        {{ as_of_override() }} is not null as is_as_of_overridden
    from observed
)

select * from as_of
