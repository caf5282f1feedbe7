with

source as (
    select * from {{ source('platform', 'refunds') }}
),

payments as (
    select
        payment_id,
        quarantine_reason,
        is_source_deleted
    from {{ ref('stg_platform__payments') }}
),

renamed as (
    select
        source.id as refund_id,
        source.payment_id,
        source.amount,
        lower(trim(source.reason)) as refund_reason,
        source.created_at,
        source._source_deleted_at as source_deleted_at,
        source._source_deleted_at is not null as is_source_deleted,
        source._dlt_load_id as load_id,
        case
            -- docs/metrics.md: refunds whose payment is missing are excluded from revenue; a payment
            -- hard-deleted in the source (raw keeps it, marked) is missing too.
            when payments.payment_id is null or payments.is_source_deleted then 'orphan'
            when payments.quarantine_reason is not null then 'parent_quarantined'
        end as quarantine_reason
    from source
    left join payments on source.payment_id = payments.payment_id
)

select * from renamed
