{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook=[
            "{% if is_incremental() %}delete from {{ this }} where order_id in (select order_id"
            " from {{ ref('stg_platform__field_service_orders') }}"
            " where quarantine_reason is not null){% endif %}"
        ]
    )
}}
-- depends_on: {{ ref('snap_platform__users') }}
-- Grain: one row per usable field-service order, accumulating request -> match -> completion
-- (or cancellation) with the lags between milestones in hours. Quoted amounts convert at the
-- rate of the request's UTC date.
-- Incremental: a run rebuilds the orders that landed since the last build or are marked deleted
-- in the source (a mark keeps the row's load id), and those of the users
-- (users_touched_since_last_build: customer person) and tenants (time zone, default currency)
-- that landed; the post-hook deletes the orders no longer usable.
with

{% if is_incremental() %}
touched_users as (
    {{ users_touched_since_last_build() }}
),

{% endif %}
orders as (
    select * from {{ ref('stg_platform__field_service_orders') }}
    where quarantine_reason is null
    {% if is_incremental() %}
        and (
            order_id in ({{ landed_since_last_build('field_service_orders') }})
            or is_source_deleted
            or customer_user_id in (select touched_users.user_id from touched_users)
            or tenant_id in ({{ landed_since_last_build('tenants') }})
        )
    {% endif %}
),

-- The tenant key is hashed once per tenant here, not once per order (same key: the join below
-- is on equality).
calendars as (
    select
        tenant_id,
        {{ surrogate_key(['tenant_id']) }} as tenant_key,
        reporting_timezone
    from {{ ref('int_tenant_calendars') }}
),

final as (
    select
        orders.order_id,
        orders.tenant_id,
        calendars.tenant_key,
        {{ surrogate_key(['orders.customer_person_id']) }} as customer_person_key,
        {{ surrogate_key(["'service_order'", 'orders.order_id']) }} as product_key,
        orders.provider_id,
        orders.service_type,
        orders.service_region,
        orders.order_status,
        orders.urgency,
        orders.estimated_hours,
        orders.is_metadata_malformed,
        orders.currency_code,
        orders.quoted_amount,
        {{ to_usd('orders.quoted_amount', 'fx.usd_per_unit') }} as quoted_amount_usd,
        orders.requested_at,
        cast({{ utc_to_local('orders.requested_at', 'calendars.reporting_timezone') }} as date)
            as requested_date,
        {{ month_start(utc_to_local('orders.requested_at', 'calendars.reporting_timezone')) }}
            as requested_month,
        orders.matched_at,
        orders.completed_at,
        orders.cancelled_at,
        {{ seconds_between('orders.requested_at', 'orders.matched_at') }} / 3600.0 as hours_to_match,
        {{ seconds_between('orders.matched_at', 'orders.completed_at') }} / 3600.0 as hours_match_to_complete,
        {{ seconds_between('orders.requested_at', 'orders.cancelled_at') }} / 3600.0 as hours_to_cancel,
        coalesce(orders.matched_at < {{ add_days('orders.requested_at', 1) }}, false)
            as is_matched_within_24h,
        orders.order_status = 'cancelled' and orders.matched_at is null as is_cancelled_without_match,
        orders.is_source_deleted
    from orders
    inner join calendars on orders.tenant_id = calendars.tenant_id
    {{ join_daily_fx_rate('orders.currency_code', 'orders.requested_at') }}
)

select * from final
