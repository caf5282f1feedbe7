-- Grain: one row per usable enrollment, accumulating its milestones (enrolled, first and last
-- activity, completed) and its purchase. Rebuilt in full each run: enrollments.updated_at is
-- a stale cursor, so an incremental filter on it would miss progress updates. Its activity
-- comes pre-aggregated per user and course (int_course_activity_aggregated, incremental).
with

enrollments as (
    select * from {{ ref('stg_platform__enrollments') }}
    where quarantine_reason is null
),

-- Dimension keys are hashed here, once per course and per tenant, not once per enrollment:
-- per-row hashes were most of this model's costliest step (same keys: the joins below are on
-- equality).
courses as (
    select
        course_id,
        {{ surrogate_key(['course_id']) }} as course_key,
        is_free
    from {{ ref('stg_platform__courses') }}
),

payments as (
    select
        payment_id,
        enrollment_id,
        amount_usd
    from {{ ref('int_payments_converted') }}
    where is_revenue and enrollment_id is not null
),

refunds as (
    select
        payment_id,
        refunded_usd
    from {{ ref('int_payment_refunds') }}
),

-- The same payments and net amounts as fct_payments (usable, revenue), read from its inputs so
-- this fact does not wait for fct_payments: in an incremental build it runs beside it.
purchases as (
    select
        payments.enrollment_id,
        min(payments.payment_id) as payment_id,
        sum(payments.amount_usd) as paid_amount_usd,
        sum(payments.amount_usd - coalesce(refunds.refunded_usd, 0)) as net_paid_amount_usd
    from payments
    left join refunds on payments.payment_id = refunds.payment_id
    group by payments.enrollment_id
),

activity as (
    select * from {{ ref('int_course_activity_aggregated') }}
),

calendars as (
    select
        tenant_id,
        {{ surrogate_key(['tenant_id']) }} as tenant_key,
        reporting_timezone
    from {{ ref('int_tenant_calendars') }}
),

final as (
    select
        enrollments.enrollment_id,
        enrollments.tenant_id,
        calendars.tenant_key,
        {{ surrogate_key(['enrollments.person_id']) }} as person_key,
        enrollments.course_id,
        courses.course_key,
        enrollments.enrollment_status,
        enrollments.acquisition_channel,
        enrollments.progress_pct,
        courses.is_free as is_free_enrollment,
        purchases.payment_id,
        coalesce(purchases.paid_amount_usd, 0) as paid_amount_usd,
        coalesce(purchases.net_paid_amount_usd, 0) as net_paid_amount_usd,
        enrollments.enrolled_at,
        cast({{ utc_to_local('enrollments.enrolled_at', 'calendars.reporting_timezone') }} as date)
            as enrolled_date,
        activity.first_activity_at,
        activity.last_activity_at,
        coalesce(activity.activity_count, 0) as activity_count,
        enrollments.completed_at,
        enrollments.completed_at is not null as is_completed,
        {{ seconds_between('enrollments.enrolled_at', 'enrollments.completed_at') }} / 86400.0
            as days_to_complete,
        enrollments.is_source_deleted
    from enrollments
    inner join courses on enrollments.course_id = courses.course_id
    inner join calendars on enrollments.tenant_id = calendars.tenant_id
    left join purchases on enrollments.enrollment_id = purchases.enrollment_id
    left join activity
        on enrollments.user_id = activity.user_id and enrollments.course_id = activity.course_id
)

select * from final
