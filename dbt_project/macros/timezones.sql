{#- Time zone arithmetic. Every engine spells it differently, so models call only these. -#}

{#- A naive wall-clock timestamp in time zone `tz` (a quoted literal or a column) -> naive UTC. -#}
{% macro wall_time_to_utc(column, tz) -%}
    {{ return(adapter.dispatch('wall_time_to_utc', 'platform_warehouse')(column, tz)) }}
{%- endmacro %}

{% macro default__wall_time_to_utc(column, tz) -%}
    convert_tz({{ column }}, {{ tz }}, 'UTC')
{%- endmacro %}

{#- DuckDB (ICU): an ambiguous wall time (the repeated hour in autumn) resolves to standard time. -#}
{% macro duckdb__wall_time_to_utc(column, tz) -%}
    timezone('UTC', timezone({{ tz }}, {{ column }}))
{%- endmacro %}

{#- A naive UTC timestamp -> the naive wall-clock time in zone `tz` (literal or column). -#}
{% macro utc_to_local(column, tz) -%}
    {{ return(adapter.dispatch('utc_to_local', 'platform_warehouse')(column, tz)) }}
{%- endmacro %}

{% macro default__utc_to_local(column, tz) -%}
    convert_tz({{ column }}, 'UTC', {{ tz }})
{%- endmacro %}

{% macro duckdb__utc_to_local(column, tz) -%}
    timezone({{ tz }}, timezone('UTC', {{ column }}))
{%- endmacro %}

{#- docs/source.md: LOCAL columns hold America/New_York wall time. -#}
{% macro new_york_to_utc(column) -%}
    {{ wall_time_to_utc(column, "'America/New_York'") }}
{%- endmacro %}
