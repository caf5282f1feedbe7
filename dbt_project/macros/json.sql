{#- JSON held in TEXT columns. Malformed documents yield NULL fields and are flagged, not dropped. -#}

{% macro json_is_valid(column) -%}
    {{ return(adapter.dispatch('json_is_valid', 'platform_warehouse')(column)) }}
{%- endmacro %}

{% macro default__json_is_valid(column) -%}
    coalesce(json_valid({{ column }}) = 1, false)
{%- endmacro %}

{% macro duckdb__json_is_valid(column) -%}
    coalesce(json_valid({{ column }}), false)
{%- endmacro %}

{#- The text at `path` (e.g. '$.urgency', '$[0]') of a valid document; NULL when malformed. -#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'platform_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    case when {{ json_is_valid(column) }} then json_unquote(json_extract({{ column }}, '{{ path }}')) end
{%- endmacro %}

{% macro duckdb__json_text(column, path) -%}
    case when {{ json_is_valid(column) }} then json_extract_string({{ column }}, '{{ path }}') end
{%- endmacro %}

{#- Number of elements of a valid JSON array; NULL when malformed. -#}
{% macro json_array_size(column) -%}
    {{ return(adapter.dispatch('json_array_size', 'platform_warehouse')(column)) }}
{%- endmacro %}

{% macro default__json_array_size(column) -%}
    case when {{ json_is_valid(column) }} then json_length({{ column }}) end
{%- endmacro %}

{% macro duckdb__json_array_size(column) -%}
    case when {{ json_is_valid(column) }} then cast(json_array_length({{ column }}) as integer) end
{%- endmacro %}
