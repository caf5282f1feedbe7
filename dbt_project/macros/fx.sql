{#- Reporting-currency conversion (docs/metrics.md): an amount converts at the daily rate of its
    transaction's UTC date (seed fx_rates_daily) and rounds half-up to the cent per row. -#}

{#- A left join of the daily rate of `currency` on the UTC date of `utc_timestamp`, as `alias`
    (its usd_per_unit: USD per unit of the currency). -#}
{% macro join_daily_fx_rate(currency, utc_timestamp, alias='fx') -%}
    left join {{ ref('fx_rates_daily') }} as {{ alias }}
        on
            {{ currency }} = {{ alias }}.currency_code
            and cast({{ utc_timestamp }} as date) = {{ alias }}.rate_date
{%- endmacro %}

{#- `amount` in USD at `usd_per_unit`, rounded half-up to the cent. -#}
{% macro to_usd(amount, usd_per_unit) -%}
    round({{ amount }} * {{ usd_per_unit }}, 2)
{%- endmacro %}
