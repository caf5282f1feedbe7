-- Grain: tenant x month (tenant time zone). Every ratio stores its numerator and denominator;
-- a ratio is NULL when its denominator is zero. Windows are half-open on UTC timestamps:
-- "within 30 days" means first sale < published_at + 30 days, "within 24 h" means
-- matched_at < requested_at + 24 h. Everything counted is known at the as-of: courses
-- published, sales made, orders requested by then; an order's match counts only if it
-- happened by then, and its cancellation only if it happened by then without a match before.
with

as_of as (
    select as_of_at from {{ ref('int_metrics_as_of') }}
),

listings as (
    select * from {{ ref('fct_course_listing') }}
),

sales as (
    select fct_payments.*
    from {{ ref('fct_payments') }} as fct_payments
    cross join as_of
    where fct_payments.is_revenue and fct_payments.created_at <= as_of.as_of_at
),

orders as (
    select
        fct_service_orders.tenant_id,
        fct_service_orders.requested_month,
        fct_service_orders.is_matched_within_24h and fct_service_orders.matched_at <= as_of.as_of_at
            as is_matched_within_24h,
        case
            when fct_service_orders.matched_at <= as_of.as_of_at then fct_service_orders.hours_to_match
        end as hours_to_match,
        -- a cancellation without a recorded time counts as known (the status says it happened)
        fct_service_orders.order_status = 'cancelled'
        and coalesce(fct_service_orders.cancelled_at <= as_of.as_of_at, true)
        and coalesce(fct_service_orders.matched_at > as_of.as_of_at, true)
            as is_cancelled_without_match
    from {{ ref('fct_service_orders') }} as fct_service_orders
    cross join as_of
    where fct_service_orders.requested_at <= as_of.as_of_at
),

listing_months as (
    select
        tenant_id,
        published_month as month_start_date,
        count(*) as courses_published,
        count(case when is_30d_window_closed then 1 end) as sell_through_30d_denominator,
        count(case when is_30d_window_closed and is_sold_within_30d then 1 end)
            as sell_through_30d_numerator,
        count(case when is_sold then 1 end) as courses_sold,
        {{ median('case when is_sold then days_to_first_sale end') }} as median_days_to_first_sale,
        count(case when not is_sold then 1 end) as courses_never_sold
    from listings
    group by tenant_id, published_month
),

buyer_months as (
    select
        tenant_id,
        created_month as month_start_date,
        count(distinct person_id) as paying_people,
        count(distinct instructor_id) as selling_instructors
    from sales
    group by tenant_id, created_month
),

order_months as (
    select
        tenant_id,
        requested_month as month_start_date,
        count(*) as orders_requested,
        count(case when is_matched_within_24h then 1 end) as orders_matched_within_24h,
        {{ median('hours_to_match') }} as median_hours_to_match,
        count(case when is_cancelled_without_match then 1 end) as orders_cancelled_without_match
    from orders
    group by tenant_id, requested_month
),

instructor_sales as (
    select
        tenant_id,
        created_month as month_start_date,
        instructor_id,
        sum(amount_usd) as gross_sales_usd
    from sales
    where instructor_id is not null
    group by tenant_id, created_month, instructor_id
),

instructor_shares as (
    select
        tenant_id,
        month_start_date,
        instructor_id,
        gross_sales_usd,
        row_number() over (
            partition by tenant_id, month_start_date order by gross_sales_usd desc, instructor_id asc
        ) as sales_rank,
        count(*) over (partition by tenant_id, month_start_date) as instructor_count,
        sum(gross_sales_usd) over (partition by tenant_id, month_start_date) as total_gross_sales_usd
    from instructor_sales
),

concentration as (
    select
        tenant_id,
        month_start_date,
        max(instructor_count) as instructors_with_sales,
        max(total_gross_sales_usd) as instructor_gross_sales_usd,
        sum(case when sales_rank <= ceil(instructor_count * 0.1) then gross_sales_usd else 0 end)
            as top_decile_gross_sales_usd,
        sum(
            (cast(gross_sales_usd as {{ type_double() }}) / cast(total_gross_sales_usd as {{ type_double() }}) * 100)
            * (cast(gross_sales_usd as {{ type_double() }}) / cast(total_gross_sales_usd as {{ type_double() }}) * 100)
        ) as seller_hhi
    from instructor_shares
    group by tenant_id, month_start_date
),

months as (
    select
        tenant_id,
        month_start_date
    from listing_months
    union
    select
        tenant_id,
        month_start_date
    from buyer_months
    union
    select
        tenant_id,
        month_start_date
    from order_months
),

final as (
    select
        {{ surrogate_key(['months.tenant_id', 'months.month_start_date']) }} as tenant_month_key,
        months.tenant_id,
        months.month_start_date,
        coalesce(listing_months.courses_published, 0) as courses_published,
        coalesce(listing_months.sell_through_30d_numerator, 0) as sell_through_30d_numerator,
        coalesce(listing_months.sell_through_30d_denominator, 0) as sell_through_30d_denominator,
        case
            when listing_months.sell_through_30d_denominator > 0
                then
                    cast(listing_months.sell_through_30d_numerator as {{ type_double() }})
                    / listing_months.sell_through_30d_denominator
        end as sell_through_30d_rate,
        coalesce(listing_months.courses_sold, 0) as courses_sold,
        listing_months.median_days_to_first_sale,
        coalesce(listing_months.courses_never_sold, 0) as courses_never_sold,
        case
            when listing_months.courses_published > 0
                then cast(listing_months.courses_never_sold as {{ type_double() }}) / listing_months.courses_published
        end as never_sold_share,
        coalesce(buyer_months.paying_people, 0) as paying_people,
        coalesce(buyer_months.selling_instructors, 0) as selling_instructors,
        case
            when buyer_months.selling_instructors > 0
                then cast(buyer_months.paying_people as {{ type_double() }}) / buyer_months.selling_instructors
        end as buyer_seller_ratio,
        coalesce(order_months.orders_requested, 0) as orders_requested,
        coalesce(order_months.orders_matched_within_24h, 0) as orders_matched_within_24h,
        case
            when order_months.orders_requested > 0
                then cast(order_months.orders_matched_within_24h as {{ type_double() }}) / order_months.orders_requested
        end as fill_rate_24h,
        order_months.median_hours_to_match,
        coalesce(order_months.orders_cancelled_without_match, 0) as orders_cancelled_without_match,
        case
            when order_months.orders_requested > 0
                then
                    cast(order_months.orders_cancelled_without_match as {{ type_double() }})
                    / order_months.orders_requested
        end as cancelled_without_match_share,
        coalesce(concentration.instructors_with_sales, 0) as instructors_with_sales,
        coalesce(concentration.top_decile_gross_sales_usd, 0) as top_decile_gross_sales_usd,
        coalesce(concentration.instructor_gross_sales_usd, 0) as instructor_gross_sales_usd,
        case
            when concentration.instructor_gross_sales_usd > 0
                then
                    cast(concentration.top_decile_gross_sales_usd as {{ type_double() }})
                    / cast(concentration.instructor_gross_sales_usd as {{ type_double() }})
        end as top_decile_sales_share,
        concentration.seller_hhi
    from months
    left join listing_months
        on months.tenant_id = listing_months.tenant_id and months.month_start_date = listing_months.month_start_date
    left join buyer_months
        on months.tenant_id = buyer_months.tenant_id and months.month_start_date = buyer_months.month_start_date
    left join order_months
        on months.tenant_id = order_months.tenant_id and months.month_start_date = order_months.month_start_date
    left join concentration
        on months.tenant_id = concentration.tenant_id and months.month_start_date = concentration.month_start_date
)

select * from final
