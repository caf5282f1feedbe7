-- Grain: one row per usable payout to an instructor. USD at the rate of the paid date (UTC),
-- or of the creation date while not paid.
with

payouts as (
    select * from {{ ref('stg_platform__payouts') }}
    where quarantine_reason is null
),

calendars as (
    select * from {{ ref('int_tenant_calendars') }}
),

final as (
    select
        payouts.payout_id,
        payouts.tenant_id,
        {{ surrogate_key(['payouts.tenant_id']) }} as tenant_key,
        payouts.instructor_id,
        {{ surrogate_key(['payouts.instructor_id']) }} as instructor_key,
        payouts.payout_batch_id,
        payouts.has_missing_batch,
        payouts.payout_status,
        payouts.currency_code,
        payouts.amount,
        fx.usd_per_unit,
        {{ to_usd('payouts.amount', 'fx.usd_per_unit') }} as amount_usd,
        payouts.period_start_date,
        payouts.period_end_date,
        payouts.paid_at,
        cast({{ utc_to_local('payouts.paid_at', 'calendars.reporting_timezone') }} as date) as paid_date,
        {{ month_start(utc_to_local('payouts.paid_at', 'calendars.reporting_timezone')) }} as paid_month,
        payouts.created_at,
        payouts.is_source_deleted
    from payouts
    inner join calendars on payouts.tenant_id = calendars.tenant_id
    {{ join_daily_fx_rate('payouts.currency_code', 'coalesce(payouts.paid_at, payouts.created_at)') }}
)

select * from final
