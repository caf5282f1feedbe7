-- Grain: instructor x tenant x month (tenant time zone). Sales are attributed revenue payments
-- (course and ebook) by the month of the payment; refunds are posted back to their payment's
-- month (restated). Earnings use the revenue share valid when each payment was made (SCD2),
-- rounded to the cent per row. Payouts count when paid, by the month of paid_at.
with

as_of as (
    select as_of_at from {{ ref('int_metrics_as_of') }}
),

sales as (
    select fct_payments.*
    from {{ ref('fct_payments') }} as fct_payments
    cross join as_of
    where
        fct_payments.is_revenue
        and fct_payments.instructor_id is not null
        and fct_payments.created_at <= as_of.as_of_at
),

refunds as (
    select
        fct_refunds.payment_id,
        sum(fct_refunds.amount_usd) as refunded_usd
    from {{ ref('fct_refunds') }} as fct_refunds
    cross join as_of
    where fct_refunds.created_at <= as_of.as_of_at
    group by fct_refunds.payment_id
),

instructors as (
    select * from {{ ref('dim_instructor') }}
),

sales_with_share as (
    select
        sales.instructor_id,
        sales.tenant_id,
        sales.created_month as month_start_date,
        sales.amount_usd,
        coalesce(refunds.refunded_usd, 0) as refunded_usd,
        sales.amount_usd - coalesce(refunds.refunded_usd, 0) as net_usd,
        sales.processor_fee_usd,
        instructors.revenue_share_pct
    from sales
    left join refunds on sales.payment_id = refunds.payment_id
    left join instructors
        on
            sales.instructor_id = instructors.instructor_id
            and sales.created_at >= instructors.valid_from
            and sales.created_at < instructors.valid_to
),

monthly_sales as (
    select
        instructor_id,
        tenant_id,
        month_start_date,
        count(*) as attributed_payment_count,
        sum(amount_usd) as gross_sales_usd,
        sum(refunded_usd) as refunds_usd,
        sum(net_usd) as net_sales_usd,
        round(sum(net_usd * revenue_share_pct) * 0.01, 2) as instructor_earnings_usd,
        sum(processor_fee_usd) as processor_fees_usd
    from sales_with_share
    group by instructor_id, tenant_id, month_start_date
),

monthly_payouts as (
    select
        fct_payouts.instructor_id,
        fct_payouts.tenant_id,
        fct_payouts.paid_month as month_start_date,
        sum(fct_payouts.amount_usd) as payouts_paid_usd
    from {{ ref('fct_payouts') }} as fct_payouts
    cross join as_of
    where fct_payouts.payout_status = 'paid' and fct_payouts.paid_at <= as_of.as_of_at
    group by fct_payouts.instructor_id, fct_payouts.tenant_id, fct_payouts.paid_month
),

months as (
    select
        instructor_id,
        tenant_id,
        month_start_date
    from monthly_sales
    union
    select
        instructor_id,
        tenant_id,
        month_start_date
    from monthly_payouts
),

combined as (
    select
        months.instructor_id,
        months.tenant_id,
        months.month_start_date,
        coalesce(monthly_sales.attributed_payment_count, 0) as attributed_payment_count,
        coalesce(monthly_sales.gross_sales_usd, 0) as gross_sales_usd,
        coalesce(monthly_sales.refunds_usd, 0) as refunds_usd,
        coalesce(monthly_sales.net_sales_usd, 0) as net_sales_usd,
        coalesce(monthly_sales.instructor_earnings_usd, 0) as instructor_earnings_usd,
        coalesce(monthly_sales.processor_fees_usd, 0) as processor_fees_usd,
        coalesce(monthly_payouts.payouts_paid_usd, 0) as payouts_paid_usd
    from months
    left join monthly_sales
        on
            months.instructor_id = monthly_sales.instructor_id
            and months.tenant_id = monthly_sales.tenant_id
            and months.month_start_date = monthly_sales.month_start_date
    left join monthly_payouts
        on
            months.instructor_id = monthly_payouts.instructor_id
            and months.tenant_id = monthly_payouts.tenant_id
            and months.month_start_date = monthly_payouts.month_start_date
),

final as (
    select
        {{ surrogate_key(['instructor_id', 'tenant_id', 'month_start_date']) }} as instructor_month_key,
        instructor_id,
        {{ surrogate_key(['instructor_id']) }} as instructor_key,
        tenant_id,
        month_start_date,
        attributed_payment_count,
        gross_sales_usd,
        refunds_usd,
        net_sales_usd,
        instructor_earnings_usd,
        net_sales_usd - instructor_earnings_usd as platform_revenue_usd,
        case
            when gross_sales_usd <> 0
                then
                    cast(net_sales_usd - instructor_earnings_usd as {{ type_double() }})
                    / cast(gross_sales_usd as {{ type_double() }})
        end as take_rate,
        processor_fees_usd,
        net_sales_usd - instructor_earnings_usd - processor_fees_usd as contribution_margin_usd,
        payouts_paid_usd,
        sum(instructor_earnings_usd - payouts_paid_usd) over (
            partition by instructor_id, tenant_id order by month_start_date
            rows between unbounded preceding and current row
        ) as balance_owed_to_date_usd,
        sum(instructor_earnings_usd - payouts_paid_usd) over (partition by instructor_id, tenant_id)
            as balance_owed_usd
    from combined
)

select * from final
