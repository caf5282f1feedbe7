-- Grain: source table x extract run. Row accounting: every raw row is counted under the run
-- whose load last wrote it, as used or quarantined (by reason), so rows_in_raw = rows_used +
-- rows_quarantined holds on every row; the extract log's figures (rows read and landed, zero
-- dates nulled, hard deletes detected) sit beside them. A run is one row even when it wrote
-- two dlt loads (extract --reconcile: its incremental pass, then what reconciling landed);
-- load_id is the run's first load. Flagged-but-kept defects (malformed JSON, tenant mismatch,
-- unknown enum, orphans of a missing parent, source-deleted rows) are counted too. tenant_id
-- is 0: the extract log is per table, not per tenant (quarantined_rows carries the tenant of
-- each quarantined row).
-- The quarantine counts come from quarantined_rows, which has already judged every raw row:
-- judging them again here (each staging view's joins to its parents, 1.46 M activity rows
-- at `medium`) doubled the work. Rows are counted from raw, and from staging only where a
-- flag needs a staging column.
{%- set tables = platform_tables() %}
with

{% for table_name, spec in tables.items() %}
    {% if spec.malformed or spec.tenant_mismatch or spec.unknown_enum or spec.orphan %}
        {{ table_name }} as (
            select
                '{{ table_name }}' as table_name,
                load_id,
                count(*) as rows_in_raw,
                {% if spec.malformed %}count(case when {{ spec.malformed }} then 1 end){% else %}0{% endif %}
                    as malformed_json_flagged,
                {% if spec.tenant_mismatch -%}
                    count(case when {{ spec.tenant_mismatch }} then 1 end)
                {%- else %}0{% endif %} as tenant_mismatch_flagged,
                {% if spec.unknown_enum %}count(case when {{ spec.unknown_enum }} then 1 end){% else %}0{% endif %}
                    as unknown_enum_flagged,
                {% if spec.orphan %}count(case when {{ spec.orphan }} then 1 end){% else %}0{% endif %}
                    as orphan_flagged,
                count(case when is_source_deleted then 1 end) as source_deleted_rows
            from {{ ref('stg_platform__' ~ table_name) }}
            group by load_id
        ),
    {% else %}
        {{ table_name }} as (
            select
                '{{ table_name }}' as table_name,
                _dlt_load_id as load_id,
                count(*) as rows_in_raw,
                0 as malformed_json_flagged,
                0 as tenant_mismatch_flagged,
                0 as unknown_enum_flagged,
                0 as orphan_flagged,
                count(_source_deleted_at) as source_deleted_rows
            from {{ source('platform', table_name) }}
            group by _dlt_load_id
        ),
    {% endif %}
{% endfor %}

counted as (
    {% for table_name in tables %}
        select * from {{ table_name }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

quarantined as (
    select
        table_name,
        load_id,
        count(*) as rows_quarantined,
        count(case when quarantine_reason = 'orphan' then 1 end) as quarantined_orphan,
        count(case when quarantine_reason = 'unknown_enum' then 1 end) as quarantined_unknown_enum,
        count(case when quarantine_reason = 'duplicate_person' then 1 end) as quarantined_duplicate_person,
        count(case when quarantine_reason = 'parent_quarantined' then 1 end) as quarantined_parent
    from {{ ref('quarantined_rows') }}
    group by table_name, load_id
),

-- Rows that belong to people erased by `warehouse forget` (their users.id columns hold the
-- anonymous, negative id), by the load that wrote them.
erased as (
    {% for table_name, spec in tables.items() if spec.erased %}
        select
            '{{ table_name }}' as table_name,
            _dlt_load_id as load_id,
            count(*) as erased_person_rows
        from {{ source('platform', table_name) }}
        where {{ spec.erased }}
        group by _dlt_load_id
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

-- The run of each load: a reconcile run's two loads share the id of its first.
load_runs as (
    select
        load_id,
        min(coalesce(run_id, load_id)) as run_id
    from {{ source('platform', '_extract_log') }}
    group by load_id
),

accounted as (
    select
        counted.table_name,
        coalesce(load_runs.run_id, counted.load_id) as run_id,
        cast(sum(counted.rows_in_raw) as {{ dbt.type_bigint() }}) as rows_in_raw,
        cast(
            sum(counted.rows_in_raw - coalesce(quarantined.rows_quarantined, 0)) as {{ dbt.type_bigint() }}
        ) as rows_used,
        cast(sum(coalesce(quarantined.rows_quarantined, 0)) as {{ dbt.type_bigint() }}) as rows_quarantined,
        cast(
            sum(coalesce(quarantined.quarantined_orphan, 0)) as {{ dbt.type_bigint() }}
        ) as quarantined_orphan,
        cast(
            sum(coalesce(quarantined.quarantined_unknown_enum, 0)) as {{ dbt.type_bigint() }}
        ) as quarantined_unknown_enum,
        cast(
            sum(coalesce(quarantined.quarantined_duplicate_person, 0)) as {{ dbt.type_bigint() }}
        ) as quarantined_duplicate_person,
        cast(
            sum(coalesce(quarantined.quarantined_parent, 0)) as {{ dbt.type_bigint() }}
        ) as quarantined_parent,
        cast(sum(counted.malformed_json_flagged) as {{ dbt.type_bigint() }}) as malformed_json_flagged,
        cast(sum(counted.tenant_mismatch_flagged) as {{ dbt.type_bigint() }}) as tenant_mismatch_flagged,
        cast(sum(counted.unknown_enum_flagged) as {{ dbt.type_bigint() }}) as unknown_enum_flagged,
        cast(sum(counted.orphan_flagged) as {{ dbt.type_bigint() }}) as orphan_flagged,
        cast(sum(counted.source_deleted_rows) as {{ dbt.type_bigint() }}) as source_deleted_rows,
        cast(sum(coalesce(erased.erased_person_rows, 0)) as {{ dbt.type_bigint() }}) as erased_person_rows
    from counted
    left join quarantined
        on counted.table_name = quarantined.table_name and counted.load_id = quarantined.load_id
    left join erased
        on counted.table_name = erased.table_name and counted.load_id = erased.load_id
    left join load_runs on counted.load_id = load_runs.load_id
    group by counted.table_name, coalesce(load_runs.run_id, counted.load_id)
),

extract_log as (
    select
        table_name,
        coalesce(run_id, load_id) as run_id,
        max(mode) as extract_mode,
        -- 'failed' (or a 'loading' never settled) sorts before 'ok': a run failed for the
        -- table when either of its loads did
        min(status) as extract_status,
        max(finished_at) as extracted_at,
        cast(sum(rows_read) as {{ dbt.type_bigint() }}) as rows_read,
        cast(sum(rows_landed) as {{ dbt.type_bigint() }}) as rows_landed,
        cast(sum(zero_dates_nulled) as {{ dbt.type_bigint() }}) as zero_dates_nulled,
        cast(sum(deletes_detected) as {{ dbt.type_bigint() }}) as hard_deletes_detected
    from {{ source('platform', '_extract_log') }}
    group by table_name, coalesce(run_id, load_id)
    -- the runs that changed the table in raw (landed rows, marked deletes or changed rows) and
    -- the failed ones; a run that only re-read rows to compare them changed nothing and is not
    -- a row here
    having
        min(status) <> 'ok'
        or sum(coalesce(rows_landed, 0)) > 0
        or sum(coalesce(deletes_detected, 0)) > 0
        or sum(coalesce(changed_rows_detected, 0)) > 0
),

final as (
    select
        {{ surrogate_key([
            'coalesce(accounted.table_name, extract_log.table_name)',
            'coalesce(accounted.run_id, extract_log.run_id)',
        ]) }}
            as table_load_key,
        0 as tenant_id,
        coalesce(accounted.table_name, extract_log.table_name) as table_name,
        coalesce(accounted.run_id, extract_log.run_id) as load_id,
        extract_log.extract_mode,
        extract_log.extract_status,
        extract_log.extracted_at,
        coalesce(extract_log.rows_read, 0) as rows_read,
        coalesce(extract_log.rows_landed, 0) as rows_landed,
        coalesce(accounted.rows_in_raw, 0) as rows_in_raw,
        coalesce(accounted.rows_used, 0) as rows_used,
        coalesce(accounted.rows_quarantined, 0) as rows_quarantined,
        coalesce(accounted.quarantined_orphan, 0) as quarantined_orphan,
        coalesce(accounted.quarantined_unknown_enum, 0) as quarantined_unknown_enum,
        coalesce(accounted.quarantined_duplicate_person, 0) as quarantined_duplicate_person,
        coalesce(accounted.quarantined_parent, 0) as quarantined_parent,
        coalesce(accounted.malformed_json_flagged, 0) as malformed_json_flagged,
        coalesce(accounted.tenant_mismatch_flagged, 0) as tenant_mismatch_flagged,
        coalesce(accounted.unknown_enum_flagged, 0) as unknown_enum_flagged,
        coalesce(accounted.orphan_flagged, 0) as orphan_flagged,
        coalesce(extract_log.zero_dates_nulled, 0) as zero_dates_nulled,
        coalesce(extract_log.hard_deletes_detected, 0) as hard_deletes_detected,
        coalesce(accounted.source_deleted_rows, 0) as source_deleted_rows,
        coalesce(accounted.erased_person_rows, 0) as erased_person_rows
    from accounted
    full outer join extract_log
        on accounted.table_name = extract_log.table_name and accounted.run_id = extract_log.run_id
)

select * from final
