with

source as (
    select * from {{ source('platform', 'field_service_orders') }}
),

tenants as (
    select
        tenant_id,
        default_currency
    from {{ ref('stg_platform__tenants') }}
),

people as (
    select
        user_id,
        person_id
    from {{ ref('stg_platform__users') }}
),

status_map as (
    select
        raw_value,
        normalized_value
    from {{ ref('enum_mappings') }}
    where enum_domain = 'order_status'
),

renamed as (
    select
        source.id as order_id,
        source.tenant_id,
        source.customer_id as customer_user_id,
        people.person_id as customer_person_id,
        source.provider_id,
        lower(trim(source.service_type)) as service_type,
        lower(trim(source.region)) as service_region,
        source.status as source_status,
        status_map.normalized_value as order_status,
        source.quoted_amount,
        coalesce(source.currency, tenants.default_currency) as currency_code,
        source.currency is null as is_currency_defaulted,
        -- access_notes (gate codes) are deliberately not carried forward.
        source.metadata is not null and not {{ json_is_valid('source.metadata') }} as is_metadata_malformed,
        {{ json_text('source.metadata', '$.urgency') }} as urgency,
        cast({{ json_text('source.metadata', '$.estimated_hours') }} as {{ dbt.type_int() }}) as estimated_hours,
        source.requested_at,
        source.matched_at,
        source.completed_at,
        source.cancelled_at,
        source.updated_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        case
            when status_map.normalized_value is null then 'unknown_enum'
            when people.user_id is null then 'orphan'
        end as quarantine_reason
    from source
    left join tenants on source.tenant_id = tenants.tenant_id
    left join people on source.customer_id = people.user_id
    left join status_map on lower(trim(source.status)) = status_map.raw_value
)

select * from renamed
