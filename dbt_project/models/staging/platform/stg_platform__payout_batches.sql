with

source as (
    select * from {{ source('platform', 'payout_batches') }}
),

renamed as (
    select
        id as payout_batch_id,
        lower(trim(status)) as batch_status,
        created_at,
        _source_deleted_at as source_deleted_at,
        _source_deleted_at is not null as is_source_deleted,
        _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
)

select * from renamed
