{#- Surrogate keys and the few aggregates standard SQL lacks. No dbt hub packages: no network. -#}

{#- A deterministic surrogate key: md5 over the '|'-joined text of the columns (NULL -> '_null_'). -#}
{% macro surrogate_key(columns) -%}
    {{ return(adapter.dispatch('surrogate_key', 'platform_warehouse')(columns)) }}
{%- endmacro %}

{% macro default__surrogate_key(columns) -%}
    md5(concat_ws('|'
    {%- for column in columns -%}
        , coalesce(cast({{ column }} as char), '_null_')
    {%- endfor -%}
    ))
{%- endmacro %}

{% macro duckdb__surrogate_key(columns) -%}
    md5(concat_ws('|'
    {%- for column in columns -%}
        , coalesce(cast({{ column }} as varchar), '_null_')
    {%- endfor -%}
    ))
{%- endmacro %}

{#- The median as a double (interpolating between the middle two values, like pandas). -#}
{% macro median(expression) -%}
    {{ return(adapter.dispatch('median', 'platform_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__median(expression) -%}
    percentile_cont(0.5) within group (order by cast({{ expression }} as double precision))
{%- endmacro %}

{% macro duckdb__median(expression) -%}
    median(cast({{ expression }} as double))
{%- endmacro %}

{#- A double-precision float type (dbt's type_float is single precision on some engines). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'platform_warehouse')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}
