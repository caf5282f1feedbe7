with

source as (
    select * from {{ source('platform', 'field_service_providers') }}
),

renamed as (
    select
        id as provider_id,
        tenant_id,
        user_id,
        lower(trim(region)) as service_region,
        service_types as service_types_json,
        service_types is not null and not {{ json_is_valid('service_types') }} as is_service_types_malformed,
        {{ json_text('service_types', '$[0]') }} as primary_service_type,
        {{ json_array_size('service_types') }} as service_type_count,
        rating,
        created_at,
        updated_at,
        _source_deleted_at as source_deleted_at,
        _source_deleted_at is not null as is_source_deleted,
        _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
)

select * from renamed
