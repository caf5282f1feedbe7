{#- Key-based incremental models (fct_payments) rebuild only the rows whose inputs changed since
    their last build, found by comparing their inputs with what the table holds. -#}

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
