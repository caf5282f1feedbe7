-- Everything a payment can buy: courses, ebooks, subscriptions and field-service orders.
with

courses as (
    select * from {{ ref('stg_platform__courses') }}
    where quarantine_reason is null
),

ebooks as (
    select * from {{ ref('stg_platform__ebooks') }}
    where quarantine_reason is null
),

-- Every subscription and order is a product a payment may point at, quarantined ones too.
subscriptions as (
    select * from {{ ref('stg_platform__subscriptions') }}
),

orders as (
    select * from {{ ref('stg_platform__field_service_orders') }}
),

products as (
    select
        'course' as product_type,
        course_id as product_id,
        tenant_id,
        course_title as product_name,
        instructor_id,
        price_amount as list_price_amount,
        currency_code
    from courses
    union all
    select
        'ebook' as product_type,
        ebook_id as product_id,
        tenant_id,
        ebook_title as product_name,
        instructor_id,
        price_amount as list_price_amount,
        currency_code
    from ebooks
    union all
    select
        'subscription' as product_type,
        subscription_id as product_id,
        tenant_id,
        {{ dbt.concat([
            'subscription_plan', "' subscription '", 'cast(subscription_id as ' ~ dbt.type_string() ~ ')'
        ]) }} as product_name,
        cast(null as {{ dbt.type_bigint() }}) as instructor_id,
        monthly_amount as list_price_amount,
        currency_code
    from subscriptions
    union all
    select
        'service_order' as product_type,
        order_id as product_id,
        tenant_id,
        {{ dbt.concat(['service_type', "' order '", 'cast(order_id as ' ~ dbt.type_string() ~ ')']) }} as product_name,
        cast(null as {{ dbt.type_bigint() }}) as instructor_id,
        quoted_amount as list_price_amount,
        currency_code
    from orders
),

final as (
    select
        {{ surrogate_key(['product_type', 'product_id']) }} as product_key,
        product_type,
        product_id,
        tenant_id,
        product_name,
        instructor_id,
        list_price_amount,
        currency_code
    from products
)

select * from final
