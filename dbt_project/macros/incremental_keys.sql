{#- Key-based incremental models rebuild only the rows whose inputs changed since their last
    build, found from the rows and parents that landed since (landed_since_last_build and the
    macros below built on it), not by comparing every row with what the model holds. -#}

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

{#- NULL-safe equality: true when both are NULL or both equal. -#}
{% macro is_not_distinct(left, right) -%}
    {{ return(adapter.dispatch('is_not_distinct', 'platform_warehouse')(left, right)) }}
{%- endmacro %}

{% macro default__is_not_distinct(left, right) -%}
    ({{ left }} is not distinct from {{ right }})
{%- endmacro %}

{% macro mysql__is_not_distinct(left, right) -%}
    ({{ left }} <=> {{ right }})
{%- endmacro %}

{#- The `key` (a column or a list of columns) of every raw row of `table_name` written by a load
    that no complete build has consumed yet (the loads the Dagster dbt asset records after each one, in
    `meta.transform_loads`): the rows new or changed since the warehouse was last built. Without
    that record (dbt run by hand on a warehouse `warehouse transform` never built) every raw row
    counts as landed. A hard delete that `extract --reconcile` marks (`_source_deleted_at`)
    keeps the row's load id, so it does not count as landed: a model that carries the deletion
    flag must look for marked rows itself. -#}
{% macro landed_since_last_build(table_name, key='id') -%}
    {%- set keys = [key] if key is string else key -%}
    {%- set consumed = none -%}
    {%- if execute -%}
        {%- set consumed = adapter.get_relation(
            database=target.database,
            schema=var('transform_state_schema'),
            identifier='transform_loads',
        ) -%}
    {%- endif %}
    select {% for column in keys %}landed.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
    from {{ source('platform', table_name) }} as landed
    {%- if consumed is not none %}
    where not exists (
        select 1
        from {{ consumed }} as consumed
        where consumed.table_name = '{{ table_name }}' and consumed.load_id = landed._dlt_load_id
    )
    {%- endif %}
{%- endmacro %}

{#- The users whose rows may read differently since the last build: the users that landed, and
    every account sharing a tenant and email (staging's person: the smallest id per tenant and
    email) with one that landed, as it is now or as any version of it in the users snapshot was:
    its person may have moved (when a canonical account changes its email, its duplicates
    become people of their own without their own rows changing). The current row counts too,
    for a row that landed without a snapshot version: one whose updated_at did not move, which
    only a full re-extract lands (reconcile compares users by key, not by content). Read
    from raw, so staging's window over every user is not worked out to find them. A model
    calling it declares `-- depends_on: {{ ref('snap_platform__users') }}`, so the snapshot
    holds the new versions. -#}
{% macro users_touched_since_last_build() -%}
    select users.id as user_id
    from {{ source('platform', 'users') }} as users
    inner join (
        select
            landed.tenant_id,
            landed.email_hash
        from {{ source('platform', 'users') }} as landed
        where landed.id in ({{ landed_since_last_build('users') }})
        union
        select
            versions.tenant_id,
            versions.email_hash
        from {{ ref('snap_platform__users') }} as versions
        where versions.user_id in ({{ landed_since_last_build('users') }})
    ) as emails
        on
            {{ is_not_distinct('users.tenant_id', 'emails.tenant_id') }}
            and {{ is_not_distinct('users.email_hash', 'emails.email_hash') }}
{%- endmacro %}

{#- The payments whose converted row may read differently since the last build: those that
    landed, those marked deleted in the source (a mark keeps the row's load id), and those of
    the users (users_touched_since_last_build), tenants, courses and ebooks that landed: their
    person, tenant flags, time zone, default currency or instructor may have moved. Read from
    raw, so no staging row is worked out to find them. FX rates and enum mappings are seeds:
    their change rebuilds every model downstream from scratch. -#}
{% macro payments_touched_since_last_build() -%}
    select payments.id as payment_id
    from {{ source('platform', 'payments') }} as payments
    where
        payments.id in ({{ landed_since_last_build('payments') }})
        or payments._source_deleted_at is not null
        or payments.user_id in (
            select touched.user_id from ({{ users_touched_since_last_build() }}) as touched
        )
        or payments.tenant_id in ({{ landed_since_last_build('tenants') }})
        or (
            lower(trim(payments.product_type)) = 'course'
            and payments.product_id in ({{ landed_since_last_build('courses') }})
        )
        or (
            lower(trim(payments.product_type)) = 'ebook'
            and payments.product_id in ({{ landed_since_last_build('ebooks') }})
        )
{%- endmacro %}
