{{
    config(
        materialized='incremental',
        unique_key='payment_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook=[
            "{% if is_incremental() %}delete from {{ this }} where payment_id not in"
            " (select payment_id from {{ ref('int_payments_converted') }}){% endif %}"
        ]
    )
}}
-- Grain: one row per usable payment (any status; `is_revenue` marks money captured).
-- Refund columns are the restated view: every usable refund posted back to its payment.
-- Incremental: a run rebuilds only the payments whose converted row, refunds or person version
-- differ from what the table holds (new and changed payments, new refunds, a person's new
-- SCD2 version), and deletes the payments that are no longer usable; --full-refresh rebuilds all.
{%- set payment_columns = [
    'tenant_id', 'person_id', 'user_id', 'product_type', 'product_id', 'instructor_id',
    'enrollment_id', 'payment_status', 'is_revenue', 'currency_code', 'is_currency_defaulted',
    'fx_rate_date', 'usd_per_unit', 'amount', 'amount_usd', 'processor', 'processor_fee',
    'is_processor_fee_estimated', 'processor_fee_usd', 'created_at', 'created_date',
    'created_month', 'is_source_deleted',
] %}
with
{% if is_incremental() %}
-- The payments to rebuild, found in SQL (a semi-join below), so their ids never travel through
-- Python or into the query text.
changed_payments as (
    select payments.payment_id
    from {{ ref('int_payments_converted') }} as payments
    left join {{ this }} as stored on payments.payment_id = stored.payment_id
    left join {{ ref('int_payment_refunds') }} as refunds
        on payments.payment_id = refunds.payment_id
    left join {{ ref('dim_person') }} as people on stored.person_version_key = people.person_version_key
    where
        stored.payment_id is null
{%- for column in payment_columns %}
        or {{ is_distinct('payments.' ~ column, 'stored.' ~ column) }}
{%- endfor %}
        or coalesce(refunds.refund_count, 0) <> stored.refund_count
        or coalesce(refunds.refunded_amount, 0) <> stored.refunded_amount
        or coalesce(refunds.refunded_usd, 0) <> stored.refunded_usd
        -- The stored person version no longer covers the payment (a new SCD2 version).
        or people.person_version_key is null
        or payments.person_id <> people.person_id
        or payments.created_at < people.valid_from
        or payments.created_at >= people.valid_to
),
{% endif %}
payments as (
    select * from {{ ref('int_payments_converted') }}
    {%- if is_incremental() %}
        where payment_id in (select changed_payments.payment_id from changed_payments)
    {%- endif %}
),

people as (
    select
        person_id,
        person_version_key,
        valid_from,
        valid_to
    from {{ ref('dim_person') }}
),

refunds as (
    select * from {{ ref('int_payment_refunds') }}
    {%- if is_incremental() %}
        where payment_id in (select changed_payments.payment_id from changed_payments)
    {%- endif %}
),

final as (
    select
        payments.payment_id,
        payments.tenant_id,
        {{ surrogate_key(['payments.tenant_id']) }} as tenant_key,
        payments.person_id,
        {{ surrogate_key(['payments.person_id']) }} as person_key,
        people.person_version_key,
        payments.user_id,
        {{ surrogate_key(['payments.product_type', 'payments.product_id']) }} as product_key,
        payments.product_type,
        payments.product_id,
        payments.instructor_id,
        case
            when payments.instructor_id is not null then {{ surrogate_key(['payments.instructor_id']) }}
        end as instructor_key,
        payments.enrollment_id,
        payments.payment_status,
        payments.is_revenue,
        payments.currency_code,
        payments.is_currency_defaulted,
        payments.fx_rate_date,
        payments.usd_per_unit,
        payments.amount,
        payments.amount_usd,
        coalesce(refunds.refund_count, 0) as refund_count,
        coalesce(refunds.refunded_amount, 0) as refunded_amount,
        coalesce(refunds.refunded_usd, 0) as refunded_usd,
        payments.amount_usd - coalesce(refunds.refunded_usd, 0) as net_amount_usd,
        payments.processor,
        payments.processor_fee,
        payments.is_processor_fee_estimated,
        payments.processor_fee_usd,
        payments.created_at,
        payments.created_date,
        payments.created_month,
        payments.is_source_deleted
    from payments
    left join people
        on
            payments.person_id = people.person_id
            and payments.created_at >= people.valid_from
            and payments.created_at < people.valid_to
    left join refunds on payments.payment_id = refunds.payment_id
)

select * from final
