with

source as (
    select * from {{ source('platform', 'domain_events') }}
),

renamed as (
    select
        id as domain_event_id,
        lower(trim(aggregate_type)) as aggregate_type,
        aggregate_id,
        event_type,
        payload is not null and not {{ json_is_valid('payload') }} as is_payload_malformed,
        {{ json_text('payload', '$.actor') }} as actor,
        occurred_at,
        _source_deleted_at as source_deleted_at,
        _source_deleted_at is not null as is_source_deleted,
        _dlt_load_id as load_id,
        cast(null as {{ dbt.type_string() }}) as quarantine_reason
    from source
)

select * from renamed
