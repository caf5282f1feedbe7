{#- Use folder-level schema names as they are (staging, core, finance, ...), not target_schema
    prefixed ones: the warehouse has one target, and analysts query `core.fct_payments`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
