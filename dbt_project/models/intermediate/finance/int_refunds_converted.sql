-- Usable refunds in USD at the rate of their original payment's date, so a full refund nets
-- to exactly zero; bucketed in the tenant's time zone.
with

refunds as (
    select * from {{ ref('stg_platform__refunds') }}
    where quarantine_reason is null
),

payments as (
    select * from {{ ref('int_payments_converted') }}
),

calendars as (
    select * from {{ ref('int_tenant_calendars') }}
),

converted as (
    select
        refunds.refund_id,
        refunds.payment_id,
        payments.tenant_id,
        payments.person_id,
        payments.instructor_id,
        payments.product_type,
        payments.product_id,
        refunds.refund_reason,
        payments.currency_code,
        refunds.amount,
        payments.usd_per_unit,
        {{ to_usd('refunds.amount', 'payments.usd_per_unit') }} as amount_usd,
        refunds.amount = payments.amount as is_full_refund,
        refunds.created_at,
        cast({{ utc_to_local('refunds.created_at', 'calendars.reporting_timezone') }} as date)
            as created_date,
        refunds.is_source_deleted,
        refunds.load_id
    from refunds
    inner join payments on refunds.payment_id = payments.payment_id
    inner join calendars on payments.tenant_id = calendars.tenant_id
)

select * from converted
