with

courses as (
    select * from {{ ref('stg_platform__courses') }}
    where quarantine_reason is null
),

final as (
    select
        {{ surrogate_key(['course_id']) }} as course_key,
        course_id,
        tenant_id,
        instructor_id,
        {{ surrogate_key(['instructor_id']) }} as instructor_key,
        course_title,
        category,
        course_level,
        course_status,
        price_amount,
        currency_code,
        is_currency_defaulted,
        is_free,
        published_at,
        created_at,
        is_source_deleted
    from courses
)

select * from final
