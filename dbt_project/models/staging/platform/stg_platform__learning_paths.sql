with

source as (
    select * from {{ source('platform', 'learning_paths') }}
),

renamed as (
    select
        id as learning_path_id,
        tenant_id,
        -- There is no regions table: every non-NULL region_id dangles. Kept, flagged.
        region_id,
        region_id is not null as has_missing_region,
        title as learning_path_title,
        created_at,
        _source_deleted_at as source_deleted_at,
        _source_deleted_at is not null as is_source_deleted,
        _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
)

select * from renamed
