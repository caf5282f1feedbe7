-- Usable refunds summed per payment: the restatement fct_payments carries and fct_enrollments
-- nets from what an enrollment was paid. One place for it, so both agree to the cent.
with

refunds as (
    select * from {{ ref('int_refunds_converted') }}
),

summed as (
    select
        payment_id,
        count(*) as refund_count,
        sum(amount) as refunded_amount,
        sum(amount_usd) as refunded_usd
    from refunds
    group by payment_id
)

select * from summed
