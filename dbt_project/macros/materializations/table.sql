{#- The table materialization on DuckDB, replacing the table in place inside one transaction.

    dbt-duckdb's own builds the new table under a temporary name, renames the old one to a
    backup, renames the new one into place, commits, then drops the backup, and looks for
    indexes and foreign keys on the way: eight statements per table, each with its events and
    Jinja, about 25-40 ms of dbt's Python per table at `medium` whatever the table's size.
    DuckDB's DDL is transactional, so dropping the old table and creating the new one under
    its name in one transaction is just as atomic: other connections (a BI tool) read the old
    table until the commit, and a failed build rolls back to it. That is dbt-duckdb's own
    path for tables with foreign keys (build_in_place); this project declares no key
    constraints (contracts enforce names and types), so it is the only path needed here.
    Contracts, hooks, grants and docs go through the same macros as dbt-duckdb's. SQL models
    only: the project has no Python model. -#}
{% materialization table, adapter="duckdb", supported_languages=['sql'] %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set grant_config = config.get('grants') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% do adapter.ensure_transaction() %}
    {% if existing_relation is not none %}
        {% do adapter.drop_relation(existing_relation) %}
    {% endif %}
    {% call statement('main') -%}
        {{- create_table_as(False, target_relation, compiled_code) }}
    {%- endcall %}

    {% do create_indexes(target_relation) %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
    {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
