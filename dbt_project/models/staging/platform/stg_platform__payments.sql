with

source as (
    select * from {{ source('platform', 'payments') }}
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
        person_id,
        tenant_id
    from {{ ref('stg_platform__users') }}
),

status_map as (
    select
        raw_value,
        normalized_value
    from {{ ref('enum_mappings') }}
    where enum_domain = 'payment_status'
),

renamed as (
    select
        source.id as payment_id,
        source.tenant_id,
        source.user_id,
        people.person_id,
        -- The source's enrollment-derived tenant sometimes disagrees with the buyer's: flagged.
        coalesce(source.tenant_id <> people.tenant_id, false) as has_tenant_mismatch,
        lower(trim(source.product_type)) as product_type,
        source.product_id,
        source.enrollment_id,
        source.amount,
        coalesce(source.currency, tenants.default_currency) as currency_code,
        source.currency is null as is_currency_defaulted,
        lower(trim(source.processor)) as processor,
        -- docs/metrics.md: a missing fee is estimated as 2.9% + 0.30 in the payment currency.
        coalesce(source.processor_fee, round(source.amount * 0.029 + 0.30, 2)) as processor_fee,
        source.processor_fee is null as is_processor_fee_estimated,
        source.status as source_status,
        status_map.normalized_value as payment_status,
        -- A payment hard-deleted in the source is no longer revenue: the marts restate history
        -- as the source now tells it, and mart_data_quality shows the deletion.
        coalesce(status_map.normalized_value in ('succeeded', 'refunded', 'partially_refunded'), false)
        and source._source_deleted_at is null
            as is_revenue,
        -- LOCAL column: New York wall time in the source.
        {{ new_york_to_utc('source.created_at') }} as created_at,
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
    left join people on source.user_id = people.user_id
    left join status_map on lower(trim(source.status)) = status_map.raw_value
)

select * from renamed
