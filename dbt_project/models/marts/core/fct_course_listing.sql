-- Grain: one row per course published by the as-of (usable, published_at <= as-of), from
-- publication to its first revenue payment by the as-of ("first sale"), with the 30-day
-- sell-through window against the as-of. A course published later is not yet known then.
with

courses as (
    select * from {{ ref('stg_platform__courses') }}
    where quarantine_reason is null and published_at is not null
),

first_sales as (
    select
        payments.product_id as course_id,
        min(payments.created_at) as first_sale_at
    from {{ ref('int_payments_converted') }} as payments
    cross join {{ ref('int_metrics_as_of') }} as as_of
    where payments.is_revenue and payments.product_type = 'course' and payments.created_at <= as_of.as_of_at
    group by payments.product_id
),

calendars as (
    select * from {{ ref('int_tenant_calendars') }}
),

as_of as (
    select as_of_at from {{ ref('int_metrics_as_of') }}
),

final as (
    select
        courses.course_id,
        courses.tenant_id,
        {{ surrogate_key(['courses.tenant_id']) }} as tenant_key,
        {{ surrogate_key(['courses.course_id']) }} as course_key,
        {{ surrogate_key(['courses.instructor_id']) }} as instructor_key,
        courses.is_free,
        courses.published_at,
        cast({{ utc_to_local('courses.published_at', 'calendars.reporting_timezone') }} as date)
            as published_date,
        {{ month_start(utc_to_local('courses.published_at', 'calendars.reporting_timezone')) }}
            as published_month,
        first_sales.first_sale_at,
        {{ seconds_between('courses.published_at', 'first_sales.first_sale_at') }} / 86400.0
            as days_to_first_sale,
        first_sales.first_sale_at is not null as is_sold,
        {{ add_days('courses.published_at', 30) }} <= as_of.as_of_at as is_30d_window_closed,
        coalesce(first_sales.first_sale_at < {{ add_days('courses.published_at', 30) }}, false)
            as is_sold_within_30d
    from courses
    cross join as_of
    inner join calendars on courses.tenant_id = calendars.tenant_id
    left join first_sales on courses.course_id = first_sales.course_id
    where courses.published_at <= as_of.as_of_at
)

select * from final
