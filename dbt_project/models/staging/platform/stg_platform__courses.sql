with

source as (
    select * from {{ source('platform', 'courses') }}
),

tenants as (
    select
        tenant_id,
        default_currency
    from {{ ref('stg_platform__tenants') }}
),

status_map as (
    select
        raw_value,
        normalized_value
    from {{ ref('enum_mappings') }}
    where enum_domain = 'course_status'
),

renamed as (
    select
        source.id as course_id,
        source.tenant_id,
        source.instructor_id,
        source.title as course_title,
        source.slug as course_slug,
        source.category,
        source.level as course_level,
        source.price_amount,
        source.price_amount = 0 as is_free,
        coalesce(source.currency, tenants.default_currency) as currency_code,
        source.currency is null as is_currency_defaulted,
        source.status as source_status,
        -- A course is a dimension member that payments and activity point at: an unknown status
        -- is flagged ('unknown'), not quarantined, so no fact loses its course.
        coalesce(status_map.normalized_value, 'unknown') as course_status,
        status_map.normalized_value is null as is_unknown_status,
        source.published_at,
        source.created_at,
        source.updated_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
    left join tenants on source.tenant_id = tenants.tenant_id
    left join status_map on lower(trim(source.status)) = status_map.raw_value
)

select * from renamed
