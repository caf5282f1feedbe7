with

source as (
    select * from {{ source('platform', 'payouts') }}
),

batches as (
    select payout_batch_id from {{ ref('stg_platform__payout_batches') }}
),

status_map as (
    select
        raw_value,
        normalized_value
    from {{ ref('enum_mappings') }}
    where enum_domain = 'payout_status'
),

renamed as (
    select
        source.id as payout_id,
        source.tenant_id,
        source.instructor_id,
        source.batch_id as payout_batch_id,
        -- The money moved even though a cleanup script deleted its batch: kept, flagged.
        source.batch_id is not null and batches.payout_batch_id is null as has_missing_batch,
        source.amount,
        source.currency as currency_code,
        source.status as source_status,
        status_map.normalized_value as payout_status,
        source.period_start as period_start_date,
        source.period_end as period_end_date,
        source.paid_at,
        source.created_at,
        source.updated_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        case when status_map.normalized_value is null then 'unknown_enum' end as quarantine_reason
    from source
    left join batches on source.batch_id = batches.payout_batch_id
    left join status_map on lower(trim(source.status)) = status_map.raw_value
)

select * from renamed
