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
-- Incremental: a run rebuilds only the payments that landed or whose parents or refunds did
-- (new and changed payments and refunds, a person's new SCD2 version, a tenant's new time
-- zone), and deletes the payments that are no longer usable; --full-refresh rebuilds all.
-- depends_on: {{ ref('snap_platform__users') }}
with
{% if is_incremental() %}
-- The payments to rebuild, found in SQL (a semi-join below), so their ids never travel through
-- Python or into the query text: those whose converted row may have moved
-- (payments_touched_since_last_build, which covers a person's new SCD2 version: every account
-- of a person whose user landed is touched) and those with a refund that landed.
changed_payments as (
    {{ payments_touched_since_last_build() }}
    union
    select refunds.payment_id
    from {{ source('platform', 'refunds') }} as refunds
    where refunds.id in ({{ landed_since_last_build('refunds') }})
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
