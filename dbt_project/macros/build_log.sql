{#- The build log: which dbt invocation last built each model, seed and snapshot.

    Every node's post-hook records the invocation (`invocation_id`) in `meta.dbt_builds`
    inside the node's own transaction, so the log names the build that produced what the
    warehouse holds, whoever ran dbt (the Dagster job or dbt by hand). The orchestration
    compares it with the builds it verified: a node whose row names another invocation was
    changed outside the verified path and is rebuilt (orchestration/build_state.py). -#}

{% macro build_log_relation() -%}
    {{ var('transform_state_schema') }}.dbt_builds
{%- endmacro %}

{#- on-run-start: the log's schema and table, when missing. -#}
{% macro create_build_log_schema() -%}
    create schema if not exists {{ var('transform_state_schema') }}
{%- endmacro %}

{% macro create_build_log() -%}
    {{ return(adapter.dispatch('create_build_log', 'platform_warehouse')()) }}
{%- endmacro %}

{% macro default__create_build_log() -%}
    create table if not exists {{ build_log_relation() }} (
        unique_id varchar(512) primary key,
        build_id varchar(64) not null,
        built_at timestamp not null
    )
{%- endmacro %}

{#- post-hooks: forget the node's previous build, then record this one (two statements, so
    every engine runs them as plain SQL). -#}
{% macro forget_previous_build() -%}
    delete from {{ build_log_relation() }} where unique_id = '{{ model.unique_id }}'
{%- endmacro %}

{% macro record_build() -%}
    insert into {{ build_log_relation() }} (unique_id, build_id, built_at)
    values ('{{ model.unique_id }}', '{{ invocation_id }}', {{ dbt.current_timestamp() }})
{%- endmacro %}
