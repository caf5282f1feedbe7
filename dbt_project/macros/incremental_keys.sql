{#- Key-based incremental models: they rebuild only the rows whose inputs changed since their
    last build, found by comparing their inputs with what the table holds. -#}

{#- The first column of a query's rows, fetched when the model runs (empty while parsing). -#}
{% macro changed_keys(query) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set result = run_query(query) -%}
    {{ return(result.columns[0].values() | list) }}
{%- endmacro %}

{#- A filter keeping the rows whose `column` is one of `keys` (integers). A literal IN list, so
    every engine pushes it down to the scan; past `limit` keys the whole input is rebuilt. -#}
{% macro in_keys(column, keys, limit=50000) -%}
    {%- if keys | length == 0 -%}
        1 = 0
    {%- elif keys | length > limit -%}
        1 = 1
    {%- else -%}
        {{ column }} in ({% for key in keys %}{{ key | int }}{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif -%}
{%- endmacro %}

{#- NULL-safe inequality: true when exactly one side is NULL or both differ. -#}
{% macro is_distinct(left, right) -%}
    {{ return(adapter.dispatch('is_distinct', 'platform_warehouse')(left, right)) }}
{%- endmacro %}

{% macro default__is_distinct(left, right) -%}
    ({{ left }} is distinct from {{ right }})
{%- endmacro %}

{% macro mysql__is_distinct(left, right) -%}
    (not ({{ left }} <=> {{ right }}))
{%- endmacro %}
