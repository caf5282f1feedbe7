-- Usable payments in USD at the rate of their UTC date, attributed to a product and, for
-- courses and ebooks, to the selling instructor; bucketed in the tenant's time zone.
-- Stored, not a view: fct_payments, fct_enrollments, fct_refunds (through
-- int_refunds_converted) and fct_course_listing all read it, and its time-zone conversions are
-- costly. Incremental: a run converts again only the payments that landed since the last build
-- or whose parents did (payments_touched_since_last_build); the post-hook deletes the payments
-- no longer usable.
{{
    config(
        materialized='incremental',
        unique_key='payment_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook=[
            "{% if is_incremental() %}delete from {{ this }} where payment_id in (select payment_id"
            " from {{ ref('stg_platform__payments') }} where quarantine_reason is not null){% endif %}"
        ]
    )
}}
-- depends_on: {{ ref('snap_platform__users') }}
with

{% if is_incremental() %}
touched_payments as (
    {{ payments_touched_since_last_build() }}
),

{% endif %}
payments as (
    select * from {{ ref('stg_platform__payments') }}
    where quarantine_reason is null
    {% if is_incremental() %}
        and payment_id in (select touched_payments.payment_id from touched_payments)
    {% endif %}
),

calendars as (
    select * from {{ ref('int_tenant_calendars') }}
),

courses as (
    select
        course_id,
        instructor_id
    from {{ ref('stg_platform__courses') }}
),

ebooks as (
    select
        ebook_id,
        instructor_id
    from {{ ref('stg_platform__ebooks') }}
),

converted as (
    select
        payments.payment_id,
        payments.tenant_id,
        payments.user_id,
        payments.person_id,
        payments.product_type,
        payments.product_id,
        payments.enrollment_id,
        case
            when payments.product_type = 'course' then courses.instructor_id
            when payments.product_type = 'ebook' then ebooks.instructor_id
        end as instructor_id,
        payments.payment_status,
        payments.is_revenue,
        payments.currency_code,
        payments.is_currency_defaulted,
        payments.amount,
        cast(payments.created_at as date) as fx_rate_date,
        fx.usd_per_unit,
        {{ to_usd('payments.amount', 'fx.usd_per_unit') }} as amount_usd,
        payments.processor,
        payments.processor_fee,
        payments.is_processor_fee_estimated,
        {{ to_usd('payments.processor_fee', 'fx.usd_per_unit') }} as processor_fee_usd,
        payments.created_at,
        cast({{ utc_to_local('payments.created_at', 'calendars.reporting_timezone') }} as date)
            as created_date,
        {{ month_start(utc_to_local('payments.created_at', 'calendars.reporting_timezone')) }}
            as created_month,
        payments.is_source_deleted,
        payments.load_id
    from payments
    inner join calendars on payments.tenant_id = calendars.tenant_id
    {{ join_daily_fx_rate('payments.currency_code', 'payments.created_at') }}
    left join courses
        on payments.product_type = 'course' and payments.product_id = courses.course_id
    left join ebooks
        on payments.product_type = 'ebook' and payments.product_id = ebooks.ebook_id
)

select * from converted
