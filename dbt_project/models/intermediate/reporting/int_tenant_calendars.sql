-- Each tenant's reporting time zone, the one every calendar bucket (day, month, cohort) uses.
with

tenants as (
    select
        tenant_id,
        reporting_timezone,
        default_currency
    from {{ ref('stg_platform__tenants') }}
)

select * from tenants
