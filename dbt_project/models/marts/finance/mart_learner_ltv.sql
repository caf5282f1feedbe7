-- Grain: one row per person (canonical id) with at least one revenue payment by as-of. The
-- person's tenant is their account's tenant (a person is tenant + email); it sets the cohort's
-- time zone. Every revenue payment of the person counts, whatever tenant_id the payment row
-- carries (the source's payments.tenant_id sometimes disagrees with the buyer's: see DQ).
-- Net = gross - refunds, refunds posted back to their payment (restated view) whenever they
-- happened up to as-of, so a refund made after the N-day window still reduces ltv_N.
with

as_of as (
    select as_of_at from {{ ref('int_metrics_as_of') }}
),

payments as (
    select fct_payments.*
    from {{ ref('fct_payments') }} as fct_payments
    cross join as_of
    where fct_payments.is_revenue and fct_payments.created_at <= as_of.as_of_at
),

refunds as (
    select
        fct_refunds.payment_id,
        sum(fct_refunds.amount_usd) as refunded_usd
    from {{ ref('fct_refunds') }} as fct_refunds
    cross join as_of
    where fct_refunds.created_at <= as_of.as_of_at
    group by fct_refunds.payment_id
),

calendars as (
    select * from {{ ref('int_tenant_calendars') }}
),

people as (
    select
        person_id,
        tenant_id
    from {{ ref('stg_platform__users') }}
    where user_id = person_id
),

net_payments as (
    select
        people.tenant_id,
        payments.person_id,
        payments.created_at,
        payments.amount_usd,
        coalesce(refunds.refunded_usd, 0) as refunded_usd,
        payments.amount_usd - coalesce(refunds.refunded_usd, 0) as net_usd,
        min(payments.created_at) over (partition by payments.person_id) as first_paid_at
    from payments
    inner join people on payments.person_id = people.person_id
    left join refunds on payments.payment_id = refunds.payment_id
),

learners as (
    select
        tenant_id,
        person_id,
        first_paid_at,
        count(*) as revenue_payment_count,
        sum(amount_usd) as gross_to_date_usd,
        sum(refunded_usd) as refunds_to_date_usd,
        sum(case when created_at < {{ add_days('first_paid_at', 30) }} then net_usd else 0 end) as ltv_30_usd,
        sum(case when created_at < {{ add_days('first_paid_at', 90) }} then net_usd else 0 end) as ltv_90_usd,
        sum(case when created_at < {{ add_days('first_paid_at', 365) }} then net_usd else 0 end) as ltv_365_usd,
        sum(net_usd) as ltv_to_date_usd
    from net_payments
    group by tenant_id, person_id, first_paid_at
),

final as (
    select
        learners.person_id,
        {{ surrogate_key(['learners.person_id']) }} as person_key,
        learners.tenant_id,
        learners.first_paid_at,
        {{ month_start(utc_to_local('learners.first_paid_at', 'calendars.reporting_timezone')) }} as cohort_month,
        learners.revenue_payment_count,
        learners.gross_to_date_usd,
        learners.refunds_to_date_usd,
        learners.ltv_30_usd,
        learners.ltv_90_usd,
        learners.ltv_365_usd,
        learners.ltv_to_date_usd,
        as_of.as_of_at >= {{ add_days('learners.first_paid_at', 30) }} as is_mature_30,
        as_of.as_of_at >= {{ add_days('learners.first_paid_at', 90) }} as is_mature_90,
        as_of.as_of_at >= {{ add_days('learners.first_paid_at', 365) }} as is_mature_365,
        as_of.as_of_at
    from learners
    cross join as_of
    inner join calendars on learners.tenant_id = calendars.tenant_id
)

select * from final
