with

source as (
    select * from {{ source('platform', 'field_service_events') }}
),

orders as (
    select id as order_id from {{ source('platform', 'field_service_orders') }}
),

renamed as (
    select
        source.id as order_event_id,
        source.order_id,
        lower(trim(source.event_type)) as event_type,
        source.payload is not null and not {{ json_is_valid('source.payload') }} as is_payload_malformed,
        {{ json_text('source.payload', '$.source') }} as event_channel,
        source.occurred_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        case when orders.order_id is null then 'orphan' end as quarantine_reason
    from source
    left join orders on source.order_id = orders.order_id
)

select * from renamed
