{#- Date and interval arithmetic, dispatched per engine. -#}

{#- Timestamp plus a whole number of days (a literal or an integer expression). -#}
{% macro add_days(column, days) -%}
    {{ return(adapter.dispatch('add_days', 'platform_warehouse')(column, days)) }}
{%- endmacro %}

{% macro default__add_days(column, days) -%}
    date_add({{ column }}, interval {{ days }} day)
{%- endmacro %}

{% macro duckdb__add_days(column, days) -%}
    ({{ column }} + to_days(cast({{ days }} as integer)))
{%- endmacro %}

{#- Seconds elapsed from `start` to `finish` (both UTC timestamps), as a number. -#}
{% macro seconds_between(start, finish) -%}
    {{ return(adapter.dispatch('seconds_between', 'platform_warehouse')(start, finish)) }}
{%- endmacro %}

{% macro default__seconds_between(start, finish) -%}
    timestampdiff(second, {{ start }}, {{ finish }})
{%- endmacro %}

{% macro duckdb__seconds_between(start, finish) -%}
    (epoch({{ finish }}) - epoch({{ start }}))
{%- endmacro %}

{#- The first day of the month of a date or timestamp, as a date. -#}
{% macro month_start(column) -%}
    {{ return(adapter.dispatch('month_start', 'platform_warehouse')(column)) }}
{%- endmacro %}

{% macro default__month_start(column) -%}
    cast(date_format({{ column }}, '%Y-%m-01') as date)
{%- endmacro %}

{% macro duckdb__month_start(column) -%}
    cast(date_trunc('month', {{ column }}) as date)
{%- endmacro %}

{#- One row per calendar day from `start_date` to `end_date` inclusive, column `date_day`. -#}
{% macro date_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine', 'platform_warehouse')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_spine(start_date, end_date) -%}
    with recursive days as (
        select cast('{{ start_date }}' as date) as date_day
        union all
        select date_add(date_day, interval 1 day) from days where date_day < cast('{{ end_date }}' as date)
    )
    select date_day from days
{%- endmacro %}

{% macro duckdb__date_spine(start_date, end_date) -%}
    select cast(generate_series as date) as date_day
    from generate_series(date '{{ start_date }}', date '{{ end_date }}', interval 1 day)
{%- endmacro %}

{#- ISO day of week of a date: Monday = 1 .. Sunday = 7. -#}
{% macro iso_day_of_week(column) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'platform_warehouse')(column)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(column) -%}
    weekday({{ column }}) + 1
{%- endmacro %}

{% macro duckdb__iso_day_of_week(column) -%}
    cast(extract(isodow from {{ column }}) as integer)
{%- endmacro %}
