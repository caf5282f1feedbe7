with

source as (
    select * from {{ source('platform', 'webhooks') }}
),

renamed as (
    select
        id as webhook_id,
        tenant_id,
        url as webhook_url,
        created_at,
        _source_deleted_at as source_deleted_at,
        _source_deleted_at is not null as is_source_deleted,
        _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
)

select * from renamed
