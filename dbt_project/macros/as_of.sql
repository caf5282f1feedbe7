{#- The metrics' as-of time: var `as_of` (ISO-8601 UTC) when given, else NULL (the caller then
    falls back to the latest source timestamp observed in raw; see int_metrics_as_of). -#}
{% macro as_of_override() -%}
    {%- set value = var('as_of', '') -%}
    {%- if value -%}
        cast('{{ value | replace("T", " ") | replace("Z", "") }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast(null as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}
