with

currencies as (
    select * from {{ ref('currencies') }}
),

rates as (
    select
        currency_code,
        min(rate_date) as first_rate_date,
        max(rate_date) as last_rate_date
    from {{ ref('fx_rates_daily') }}
    group by currency_code
),

final as (
    select
        currencies.currency_code,
        currencies.currency_name,
        rates.first_rate_date,
        rates.last_rate_date
    from currencies
    inner join rates on currencies.currency_code = rates.currency_code
)

select * from final
