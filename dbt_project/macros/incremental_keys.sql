{#- Key-based incremental models rebuild only the rows whose inputs changed since their last
    build: fct_payments by comparing its inputs with what it holds, the activity models by the
    parents that landed since (landed_since_last_build). -#}

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

{#- The `key` of every raw row of `table_name` written by a load that no complete build has
    consumed yet (the loads `warehouse transform` records after each one, in
    `meta.transform_loads`): the rows new or changed since the warehouse was last built. Without
    that record (dbt run by hand on a warehouse `warehouse transform` never built) every raw row
    counts as landed. A hard delete that `extract --reconcile` marks (`_source_deleted_at`)
    keeps the row's load id, so it does not count as landed: a model that carries the deletion
    flag must look for marked rows itself. -#}
{% macro landed_since_last_build(table_name, key='id') -%}
    {%- set consumed = none -%}
    {%- if execute -%}
        {%- set consumed = adapter.get_relation(
            database=target.database,
            schema=var('transform_state_schema'),
            identifier='transform_loads',
        ) -%}
    {%- endif %}
    select landed.{{ key }}
    from {{ source('platform', table_name) }} as landed
    {%- if consumed is not none %}
    where not exists (
        select 1
        from {{ consumed }} as consumed
        where consumed.table_name = '{{ table_name }}' and consumed.load_id = landed._dlt_load_id
    )
    {%- endif %}
{%- endmacro %}
