{{
    config(
        materialized='incremental',
        unique_key='enrollment_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook=[
            "{% if is_incremental() %}delete from {{ this }} where enrollment_id in (select"
            " enrollment_id from {{ ref('stg_platform__enrollments') }}"
            " where quarantine_reason is not null){% endif %}"
        ]
    )
}}
-- depends_on: {{ ref('snap_platform__users') }}
-- Grain: one row per usable enrollment, accumulating its milestones (enrolled, first and last
-- activity, completed) and its purchase. Its activity comes pre-aggregated per user and course
-- (int_course_activity_aggregated, incremental).
-- Incremental, by what landed rather than by updated_at (a stale cursor: progress updates do not
-- bump it). A run rebuilds the enrollments that landed since the last build or are marked
-- deleted in the source (a mark keeps the row's load id); those of the users that landed and of
-- the accounts sharing their email (users_touched_since_last_build: person), and of the tenants
-- and courses that landed (time zone, price); those with activity that landed; and
-- those whose purchase differs from the stored one (a payment or refund landed or moved). The
-- post-hook deletes the enrollments no longer usable.
with

{% if is_incremental() %}
landed_enrollments as (
    {{ landed_since_last_build('enrollments') }}
),

touched_users as (
    {{ users_touched_since_last_build() }}
),

landed_tenants as (
    {{ landed_since_last_build('tenants') }}
),

-- The courses that landed and those of the tenants that landed (a course reads its tenant).
landed_courses as (
    select landed.id as course_id
    from ({{ landed_since_last_build('courses') }}) as landed
    union
    select courses.id as course_id
    from {{ source('platform', 'courses') }} as courses
    where courses.tenant_id in (select landed_tenants.id from landed_tenants)
),

-- The enrollments of the users and courses with activity that landed.
enrollments_with_landed_activity as (
    select enrollments.id as enrollment_id
    from {{ source('platform', 'enrollments') }} as enrollments
    inner join (
        select distinct
            landed.user_id,
            landed.course_id
        from ({{ landed_since_last_build('activity_logs', ['user_id', 'course_id']) }}) as landed
    ) as landed_activity
        on
            enrollments.user_id = landed_activity.user_id
            and enrollments.course_id = landed_activity.course_id
),

{% endif %}
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

{% if is_incremental() %}
stored_purchases as (
    select
        enrollment_id,
        payment_id,
        paid_amount_usd,
        net_paid_amount_usd
    from {{ this }}
    where payment_id is not null
),

-- The enrollments whose purchase differs from the stored one: every payment and refund of an
-- enrollment adds up to it, so comparing the sums catches a payment or refund that landed,
-- changed or moved to another enrollment (a purchase gone, a purchase new, or different).
changed_purchases as (
    select stored_purchases.enrollment_id
    from stored_purchases
    where
        stored_purchases.enrollment_id not in (select purchases.enrollment_id from purchases)
    union
    select purchases.enrollment_id
    from purchases
    left join stored_purchases on purchases.enrollment_id = stored_purchases.enrollment_id
    where
        stored_purchases.enrollment_id is null
        or {{ is_distinct('purchases.payment_id', 'stored_purchases.payment_id') }}
        or {{ is_distinct('coalesce(purchases.paid_amount_usd, 0)', 'stored_purchases.paid_amount_usd') }}
        or {{ is_distinct(
            'coalesce(purchases.net_paid_amount_usd, 0)', 'stored_purchases.net_paid_amount_usd'
        ) }}
),

{% endif %}
enrollments as (
    select * from {{ ref('stg_platform__enrollments') }}
    where quarantine_reason is null
    {% if is_incremental() %}
        and (
            enrollment_id in (select landed_enrollments.id from landed_enrollments)
            or is_source_deleted
            or user_id in (select touched_users.user_id from touched_users)
            or tenant_id in (select landed_tenants.id from landed_tenants)
            or course_id in (select landed_courses.course_id from landed_courses)
            or enrollment_id in (
                select enrollments_with_landed_activity.enrollment_id
                from enrollments_with_landed_activity
            )
            or enrollment_id in (select changed_purchases.enrollment_id from changed_purchases)
        )
    {% endif %}
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
