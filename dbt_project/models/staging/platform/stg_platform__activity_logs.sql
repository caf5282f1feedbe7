with

source as (
    select * from {{ source('platform', 'activity_logs') }}
),

renamed as (
    select
        id as activity_id,
        tenant_id,
        user_id,
        course_id,
        lower(trim(activity_type)) as activity_type,
        occurred_at,
        _source_deleted_at as source_deleted_at,
        _source_deleted_at is not null as is_source_deleted,
        _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
)

select * from renamed
