with

source as (
    select * from {{ source('platform', 'tenants') }}
),

renamed as (
    select
        id as tenant_id,
        name as tenant_name,
        slug as tenant_slug,
        region,
        default_currency,
        reporting_timezone,
        created_at,
        _source_deleted_at as source_deleted_at,
        _source_deleted_at is not null as is_source_deleted,
        _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
)

select * from renamed
