-- Grain: one row per usable refund (refunds of missing payments are quarantined).
-- USD at the rate of the original payment's date.
with

refunds as (
    select * from {{ ref('int_refunds_converted') }}
),

final as (
    select
        refund_id,
        payment_id,
        tenant_id,
        {{ surrogate_key(['tenant_id']) }} as tenant_key,
        {{ surrogate_key(['person_id']) }} as person_key,
        {{ surrogate_key(['product_type', 'product_id']) }} as product_key,
        refund_reason,
        currency_code,
        amount,
        usd_per_unit,
        amount_usd,
        is_full_refund,
        created_at,
        created_date,
        is_source_deleted
    from refunds
)

select * from final
