"""Asset checks that gate the graph: GX suites, reconciliation with the source, freshness.

Every check opens the DuckDB file, so every check step is in the ``warehouse_writer`` pool
too: DuckDB refuses a reader while another process writes.

Every verdict goes to the ledger (``orchestration/check_ledger.py``) with the identity of
what it judged. A suite whose relation has not changed since its last verdict is not run
again: its verdict is carried over (``carried_over`` in the metadata), so a run costs the
checks of what changed. Reconciliation and freshness judge the source and the clock, which
move on their own, so they always run.

Severity is the contract: an ERROR check is *blocking*, so when it fails nothing
downstream of its asset runs in that run and the run fails naming the check; a WARN
check is reported (and alerted) but never blocks.

- ``raw_suite`` (ERROR) on every ``raw/<table>``: the raw-layer contract (GX, raw.py);
- ``raw_columns`` (WARN) on every ``raw/<table>``: no column beyond the contract's (an
  addition at the source is reported, never blocking);
- ``reconciles_with_source`` (ERROR) on every ``raw/<table>``: source row count and
  money sum equal raw's, minus rows whose hard delete was detected;
- ``accounts_for_every_raw_row`` (ERROR) on every staging model: every raw row comes out
  of staging exactly once, used or quarantined with a reason. With the check above:
  source rows = used + quarantined - hard-deleted rows, no row lost or doubled;
- ``fresh_within_sla`` (WARN) on every ``raw/<table>``: last successful load and data
  lag behind the source both within the configured SLA;
- ``mart_rules`` (ERROR) and ``mart_distribution`` (WARN) on the marts (GX, marts.py).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
from dagster import AssetCheckExecutionContext

from expectations.marts import mart_suites
from expectations.raw import raw_columns_suite, raw_suite
from expectations.validation import Severity, Suite, SuiteOutcome, build_data_docs, run_suite
from ingestion.settings import WarehouseSettings
from orchestration.build_state import RAW_PREFIX, Graph, read_facts, relation_identities
from orchestration.check_ledger import Verdict, read_verdicts, record_verdicts, verdict
from orchestration.config import RECHECK_TAG, WRITER_POOL, OrchestrationSettings
from orchestration.keys import raw_key, source_key
from orchestration.relations import ModelRelation
from orchestration.source_catalog import SourceTable, source_tables
from orchestration.source_db import TableProfile, profile_tables
from orchestration.warehouse_db import relation_exists, warehouse_connection

RAW_SUITE = "raw_suite"
RAW_COLUMNS = "raw_columns"
RECONCILIATION = "reconciles_with_source"
ROW_ACCOUNTING = "accounts_for_every_raw_row"
FRESHNESS = "fresh_within_sla"
MART_RULES = "mart_rules"
MART_DISTRIBUTION = "mart_distribution"

_SEVERITY = {Severity.ERROR: dg.AssetCheckSeverity.ERROR, Severity.WARN: dg.AssetCheckSeverity.WARN}


class CheckLedger:
    """A check step's view of the ledger: what each relation holds now, the verdicts so far,
    and the verdicts this step adds (written by ``save``)."""

    def __init__(self, context: AssetCheckExecutionContext, warehouse_path: Path, manifest: Path):
        self.run_id = context.run.run_id
        self.recheck = context.run.tags.get(RECHECK_TAG) == "true"
        self.warehouse_path = warehouse_path
        self.graph = Graph.load(manifest)
        with warehouse_connection(warehouse_path) as con:
            self.identities = relation_identities(self.graph, read_facts(con))
            self.verdicts = read_verdicts(con)
        self.new: list[Verdict] = []

    def carried(self, key: dg.AssetCheckKey) -> dg.AssetCheckResult | None:
        """The check's last verdict as a result, when it judged what its relations hold now
        (never in a run tagged to check everything again)."""
        found = self.verdicts.get(key.to_user_string())
        if self.recheck or found is None or not found.is_current(self.identities):
            return None
        return dg.AssetCheckResult(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=found.passed,
            severity=dg.AssetCheckSeverity(found.severity),
            description=f"carried over from run {found.run_id[:8]}: {found.description}"[:1000],
            metadata={
                "carried_over": True,
                "checked_in_run": found.run_id,
                "checked_at": str(found.evaluated_at),
            },
        )

    def judged(self, result: dg.AssetCheckResult, refs: Sequence[str]) -> dg.AssetCheckResult:
        """Keep ``result`` (a verdict on ``refs`` as they are now) for the ledger."""
        severity = result.severity.value if result.severity else "ERROR"
        self.new.append(
            verdict(
                dg.AssetCheckKey(result.asset_key, result.check_name).to_user_string(),  # type: ignore[arg-type]
                result.asset_key.to_user_string(),  # type: ignore[union-attr]
                refs,
                self.identities,
                passed=result.passed,
                severity=severity,
                description=result.description or "",
                run_id=self.run_id,
            )
        )
        return result

    def save(self) -> None:
        """Write this step's verdicts."""
        if self.new:
            with duckdb.connect(str(self.warehouse_path)) as con:
                record_verdicts(con, self.new)


def _raw_ref(table: str) -> list[str]:
    return [RAW_PREFIX + table]


def _selected_tables(context: AssetCheckExecutionContext, check_name: str) -> list[SourceTable]:
    selected = {
        k.asset_key.path[-1] for k in context.selected_asset_check_keys if k.name == check_name
    }
    return [t for t in source_tables() if t.name in selected]


def _suite_result(
    key: dg.AssetKey, check_name: str, suite: Suite, outcome: SuiteOutcome
) -> dg.AssetCheckResult:
    failures = outcome.describe_failures()
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=check_name,
        passed=outcome.success,
        severity=_SEVERITY[suite.severity],
        description=failures or f"{suite.name}: all {len(outcome.results)} expectations hold",
        metadata={
            "suite": suite.name,
            "rows": outcome.rows,
            "expectations": len(outcome.results),
            "failed_expectations": len(outcome.failures),
            "failures": failures or "none",
            "data_docs": str(outcome.docs_page) if outcome.docs_page else "not built",
        },
    )


def _missing_result(
    key: dg.AssetKey, check_name: str, severity: Severity, what: str
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=check_name,
        passed=False,
        severity=_SEVERITY[severity],
        description=f"{what} does not exist in the warehouse",
    )


# -- raw: GX contract suites -------------------------------------------------------------


def raw_suite_checks(manifest: Path) -> dg.AssetChecksDefinition:
    """One blocking GX suite per raw table, evaluated in one step over one connection."""

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                RAW_SUITE,
                asset=raw_key(t.name),
                blocking=True,
                description=raw_suite(t.name, t.columns).description,
            )
            for t in source_tables()
        ]
        + [
            dg.AssetCheckSpec(
                RAW_COLUMNS,
                asset=raw_key(t.name),
                blocking=False,
                description=raw_columns_suite(t.name, t.columns).description,
            )
            for t in source_tables()
        ],
        can_subset=True,
        name="raw_suites",
        pool=WRITER_POOL,
    )
    def raw_suites(
        context: AssetCheckExecutionContext,
        warehouse: dg.ResourceParam[WarehouseSettings],
        orchestration: dg.ResourceParam[OrchestrationSettings],
    ) -> Iterable[dg.AssetCheckResult]:
        """Validate each selected raw table against its contract suite (ERROR), unless it has
        not changed since its last verdict."""
        ledger = CheckLedger(context, warehouse.warehouse_path, manifest)
        validated = []
        with warehouse_connection(warehouse.warehouse_path) as con:
            for check, suite_of in ((RAW_SUITE, raw_suite), (RAW_COLUMNS, raw_columns_suite)):
                for table in _selected_tables(context, check):
                    key = raw_key(table.name)
                    carried = ledger.carried(dg.AssetCheckKey(key, check))
                    if carried is not None:
                        yield carried
                        continue
                    suite = suite_of(table.name, table.columns)
                    if not relation_exists(con, "raw", table.name):
                        result = _missing_result(key, check, suite.severity, table.raw_relation)
                    else:
                        outcome = run_suite(
                            suite, con, table.raw_relation, orchestration.gx_site_dir
                        )
                        result = _suite_result(key, check, suite, outcome)
                        validated.append(outcome.result_id)
                    yield ledger.judged(result, _raw_ref(table.name))
        ledger.save()
        if validated:
            build_data_docs(orchestration.gx_site_dir, validated)

    return raw_suites


# -- raw: reconciliation with the source --------------------------------------------------


@dataclass(frozen=True)
class RawProfile:
    """What raw holds for one table: live rows (not deleted at the source) and their money."""

    rows: int
    deleted: int
    live_rows: int
    live_money_sum: Decimal | None


def profile_raw(con, table: SourceTable) -> RawProfile:
    """Row counts and money sum of ``raw.<table>``, live rows being those not hard-deleted."""
    money = f"sum({table.money_column}) filter (where _source_deleted_at is null)"
    row = con.execute(
        f"""
        select
            count(*),
            count(*) filter (where _source_deleted_at is not null),
            {money if table.money_column else "null"}
        from {table.raw_relation}
        """
    ).fetchall()[0]
    rows, deleted = int(row[0]), int(row[1])
    live_sum = Decimal(str(row[2])).quantize(Decimal("0.01")) if row[2] is not None else None
    return RawProfile(rows, deleted, rows - deleted, live_sum)


def reconcile(source: TableProfile, raw: RawProfile) -> tuple[bool, str]:
    """Exact equality of rows and money between the source and raw's live rows."""
    problems = []
    if source.row_count != raw.live_rows:
        problems.append(
            f"rows: source {source.row_count} != raw {raw.rows} - {raw.deleted} deleted "
            f"= {raw.live_rows} (difference {raw.live_rows - source.row_count:+d})"
        )
    if (source.money_sum or Decimal(0)) != (raw.live_money_sum or Decimal(0)):
        problems.append(f"money: source {source.money_sum} != raw {raw.live_money_sum}")
    if problems:
        return False, "; ".join(problems)
    return True, f"{source.row_count} rows" + (
        f", money {source.money_sum}" if source.money_sum is not None else ""
    )


def reconciliation_checks(manifest: Path) -> dg.AssetChecksDefinition:
    """One blocking reconciliation check per raw table: source = raw minus deletions."""

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                RECONCILIATION,
                asset=raw_key(t.name),
                blocking=True,
                description=f"source.{t.name} row count"
                + (f" and sum({t.money_column})" if t.money_column else "")
                + f" equal raw.{t.name}'s, minus rows deleted at the source.",
            )
            for t in source_tables()
        ],
        can_subset=True,
        name="reconciliation",
        pool=WRITER_POOL,
    )
    def reconciliation(
        context: AssetCheckExecutionContext, warehouse: dg.ResourceParam[WarehouseSettings]
    ) -> Iterable[dg.AssetCheckResult]:
        """Compare each selected table's source profile with raw's (ERROR)."""
        ledger = CheckLedger(context, warehouse.warehouse_path, manifest)
        tables = _selected_tables(context, RECONCILIATION)
        sources = {p.table: p for p in profile_tables(warehouse.resolved_source_url, tables)}
        with warehouse_connection(warehouse.warehouse_path) as con:
            for table in tables:
                key = raw_key(table.name)
                if not relation_exists(con, "raw", table.name):
                    missing = _missing_result(
                        key, RECONCILIATION, Severity.ERROR, table.raw_relation
                    )
                    yield ledger.judged(missing, _raw_ref(table.name))
                    continue
                source, raw = sources[table.name], profile_raw(con, table)
                passed, description = reconcile(source, raw)
                yield ledger.judged(
                    dg.AssetCheckResult(
                        asset_key=key,
                        check_name=RECONCILIATION,
                        passed=passed,
                        severity=dg.AssetCheckSeverity.ERROR,
                        description=description,
                        metadata={
                            "source_rows": source.row_count,
                            "raw_rows": raw.rows,
                            "raw_deleted_at_source": raw.deleted,
                            "raw_live_rows": raw.live_rows,
                            "money_column": table.money_column or "none",
                            "source_money_sum": str(source.money_sum),
                            "raw_money_sum": str(raw.live_money_sum),
                        },
                    ),
                    _raw_ref(table.name),
                )
        ledger.save()

    return reconciliation


# -- staging: every raw row used or quarantined -------------------------------------------


@dataclass(frozen=True)
class RowAccount:
    """One table's rows in raw and what staging made of them."""

    raw_rows: int
    used: int
    quarantined: dict[str, int]
    source_deleted: int

    @property
    def staged_rows(self) -> int:
        """Rows staging returned: used plus quarantined."""
        return self.used + sum(self.quarantined.values())


def account_rows(con, table: SourceTable, staging: ModelRelation) -> RowAccount:
    """Raw's row count against the staging model's, split by quarantine reason."""
    ((raw_rows,),) = con.execute(f"select count(*) from {table.raw_relation}").fetchall()
    by_reason = con.execute(
        f"select quarantine_reason, count(*), count(*) filter (where is_source_deleted) "
        f"from {staging.relation} group by quarantine_reason"
    ).fetchall()
    quarantined = {str(reason): int(rows) for reason, rows, _ in by_reason if reason is not None}
    used = sum(int(rows) for reason, rows, _ in by_reason if reason is None)
    deleted = sum(int(d) for _, _, d in by_reason)
    return RowAccount(int(raw_rows), used, quarantined, deleted)


def row_accounting_result(
    table: SourceTable, staging: ModelRelation, account: RowAccount
) -> dg.AssetCheckResult:
    """Pass when staging returned each raw row exactly once (used or quarantined)."""
    reasons = ", ".join(f"{n} {r}" for r, n in sorted(account.quarantined.items())) or "none"
    difference = account.staged_rows - account.raw_rows
    if difference:
        description = (
            f"{staging.relation} returned {account.staged_rows} rows for the {account.raw_rows} "
            f"of {table.raw_relation} ({difference:+d}): rows were "
            + ("lost" if difference < 0 else "duplicated")
        )
    else:
        description = (
            f"{account.raw_rows} raw rows = {account.used} used + "
            f"{sum(account.quarantined.values())} quarantined ({reasons})"
        )
    return dg.AssetCheckResult(
        asset_key=staging.key,
        check_name=ROW_ACCOUNTING,
        passed=difference == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "raw_rows": account.raw_rows,
            "rows_used": account.used,
            "rows_quarantined": sum(account.quarantined.values()),
            "quarantined_by_reason": dg.MetadataValue.json(account.quarantined),
            "source_deleted_rows": account.source_deleted,
            "difference": difference,
        },
    )


def row_accounting_checks(
    staging: Mapping[str, ModelRelation], manifest: Path
) -> list[dg.AssetChecksDefinition]:
    """One blocking check per staging model of an extracted table: raw = used + quarantined."""
    tables = [t for t in source_tables() if t.name in staging]
    if not tables:
        return []

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                ROW_ACCOUNTING,
                asset=staging[t.name].key,
                blocking=True,
                additional_deps=[raw_key(t.name)],
                description=f"Every row of raw.{t.name} comes out of {staging[t.name].table} "
                "exactly once: used, or quarantined with a reason.",
            )
            for t in tables
        ],
        can_subset=True,
        name="row_accounting",
        pool=WRITER_POOL,
    )
    def row_accounting(
        context: AssetCheckExecutionContext, warehouse: dg.ResourceParam[WarehouseSettings]
    ) -> Iterable[dg.AssetCheckResult]:
        """Count each selected table's rows in raw and in staging, by quarantine reason, unless
        neither changed since the last count."""
        ledger = CheckLedger(context, warehouse.warehouse_path, manifest)
        selected = {k.asset_key for k in context.selected_asset_check_keys}
        with warehouse_connection(warehouse.warehouse_path) as con:
            for table in tables:
                model = staging[table.name]
                if model.key not in selected:
                    continue
                carried = ledger.carried(dg.AssetCheckKey(model.key, ROW_ACCOUNTING))
                if carried is not None:
                    yield carried
                    continue
                if not relation_exists(con, model.schema, model.table):
                    result = _missing_result(
                        model.key, ROW_ACCOUNTING, Severity.ERROR, model.relation
                    )
                else:
                    result = row_accounting_result(table, model, account_rows(con, table, model))
                yield ledger.judged(result, [model.unique_id, *_raw_ref(table.name)])
        ledger.save()

    return [row_accounting]


# -- raw: freshness against the SLA -------------------------------------------------------


def _last_loads(con) -> dict[str, datetime]:
    """Finish time of each table's last successful extract, from ``raw._extract_log``."""
    if not relation_exists(con, "raw", "_extract_log"):
        return {}
    rows = con.execute(
        "select table_name, max(finished_at) from raw._extract_log "
        "where status = 'ok' group by table_name"
    ).fetchall()
    return {name: _as_utc(at) for name, at in rows if at is not None}


def _observed_maxima(
    context: AssetCheckExecutionContext, tables: Sequence[SourceTable]
) -> dict[str, object]:
    """The source's max cursor of each table as this run's observation of ``source/<table>``
    recorded it (the land job observes just before it extracts): no second read of the source."""
    maxima: dict[str, object] = {}
    for table in tables:
        records = context.instance.fetch_observations(source_key(table.name), limit=1).records
        if not records or records[0].run_id != context.run.run_id:
            continue
        observation = records[0].asset_observation
        entry = observation.metadata.get("max_cursor") if observation else None
        if entry is not None:
            maxima[table.name] = _cursor_value(str(entry.value))
    return maxima


def _cursor_value(text: str) -> object:
    """An observed max cursor back from its metadata text (a timestamp, a number, or None)."""
    if text == "None":
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def freshness_checks(manifest: Path) -> dg.AssetChecksDefinition:
    """One WARN freshness check per raw table against ``freshness_sla_hours``."""

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                FRESHNESS,
                asset=raw_key(t.name),
                blocking=False,
                description=f"raw.{t.name} was loaded within the SLA and lags the source's "
                f"max `{t.cursor}` by no more than the SLA.",
            )
            for t in source_tables()
        ],
        can_subset=True,
        name="freshness",
        pool=WRITER_POOL,
    )
    def freshness(
        context: AssetCheckExecutionContext,
        warehouse: dg.ResourceParam[WarehouseSettings],
        orchestration: dg.ResourceParam[OrchestrationSettings],
    ) -> Iterable[dg.AssetCheckResult]:
        """Age of each selected table's last load and its cursor lag behind the source (WARN)."""
        ledger = CheckLedger(context, warehouse.warehouse_path, manifest)
        sla = timedelta(hours=orchestration.freshness_sla_hours)
        now = datetime.now(UTC)
        tables = _selected_tables(context, FRESHNESS)
        source_max = _observed_maxima(context, tables)
        unobserved = [t for t in tables if t.name not in source_max]
        if unobserved:  # run without this run's observation: read the source
            for p in profile_tables(warehouse.resolved_source_url, unobserved, money=False):
                source_max[p.table] = p.max_cursor
        with warehouse_connection(warehouse.warehouse_path) as con:
            loads = _last_loads(con)
            for table in tables:
                key = raw_key(table.name)
                if not relation_exists(con, "raw", table.name):
                    yield _missing_result(key, FRESHNESS, Severity.WARN, table.raw_relation)
                    continue
                raw_max = con.execute(
                    f"select max({table.cursor}) from {table.raw_relation} "
                    "where _source_deleted_at is null"
                ).fetchall()[0][0]
                result = _freshness_result(
                    key,
                    table,
                    sla,
                    now,
                    loads.get(table.name),
                    source_max[table.name],
                    raw_max,
                )
                yield ledger.judged(result, _raw_ref(table.name))
        ledger.save()

    return freshness


def _freshness_result(key, table, sla, now, last_load, source_max, raw_max) -> dg.AssetCheckResult:
    problems = []
    if last_load is None:
        problems.append("no successful load recorded in raw._extract_log")
    elif now - last_load > sla:
        problems.append(f"last load {last_load:%Y-%m-%d %H:%M} UTC is older than {sla}")
    lag: timedelta | None = None
    if isinstance(source_max, datetime) and isinstance(raw_max, datetime):
        lag = max(source_max - raw_max, timedelta(0))
        if lag > sla:
            problems.append(f"raw's max {table.cursor} lags the source's by {lag}")
    elif source_max is not None and raw_max is None:
        problems.append("the source has rows that raw has none of")
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=FRESHNESS,
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(problems) or "within the SLA",
        metadata={
            "sla_hours": sla.total_seconds() / 3600,
            "last_load": str(last_load),
            "source_max_cursor": str(source_max),
            "raw_max_cursor": str(raw_max),
            "lag_hours": lag.total_seconds() / 3600 if lag is not None else -1.0,
        },
    )


# -- marts: GX business rules and distributions ---------------------------------------------


def mart_check_keys(marts: Mapping[str, ModelRelation]) -> list[dg.AssetCheckKey]:
    """The GX checks of the marts (rules and distributions)."""
    return [
        dg.AssetCheckKey(
            mart.key, MART_RULES if suite.severity is Severity.ERROR else MART_DISTRIBUTION
        )
        for mart in marts.values()
        for suite in mart_suites(mart.name)
    ]


def mart_checks(
    marts: Mapping[str, ModelRelation], manifest: Path
) -> list[dg.AssetChecksDefinition]:
    """Per mart: a blocking GX rules check (ERROR) and, where defined, a distribution (WARN)."""
    specs = []
    for mart in marts.values():
        for suite in mart_suites(mart.name):
            specs.append(
                dg.AssetCheckSpec(
                    MART_RULES if suite.severity is Severity.ERROR else MART_DISTRIBUTION,
                    asset=mart.key,
                    blocking=suite.severity is Severity.ERROR,
                    description=suite.description,
                )
            )
    if not specs:
        return []
    by_key = {m.key: m for m in marts.values()}

    @dg.multi_asset_check(specs=specs, can_subset=True, name="mart_suites", pool=WRITER_POOL)
    def mart_suite_checks(
        context: AssetCheckExecutionContext,
        warehouse: dg.ResourceParam[WarehouseSettings],
        orchestration: dg.ResourceParam[OrchestrationSettings],
    ) -> Iterable[dg.AssetCheckResult]:
        """Validate each selected mart against its rules and distribution suites, unless it
        was not rebuilt since their last verdict."""
        ledger = CheckLedger(context, warehouse.warehouse_path, manifest)
        selected = context.selected_asset_check_keys
        validated = []
        with warehouse_connection(warehouse.warehouse_path) as con:
            for mart in by_key.values():
                for suite in mart_suites(mart.name):
                    name = MART_RULES if suite.severity is Severity.ERROR else MART_DISTRIBUTION
                    key = dg.AssetCheckKey(mart.key, name)
                    if key not in selected:
                        continue
                    carried = ledger.carried(key)
                    if carried is not None:
                        yield carried
                        continue
                    if not relation_exists(con, mart.schema, mart.table):
                        result = _missing_result(mart.key, name, suite.severity, mart.relation)
                    else:
                        outcome = run_suite(suite, con, mart.relation, orchestration.gx_site_dir)
                        result = _suite_result(mart.key, name, suite, outcome)
                        validated.append(outcome.result_id)
                    yield ledger.judged(result, [mart.unique_id])
        ledger.save()
        if validated:
            build_data_docs(orchestration.gx_site_dir, validated)

    return [mart_suite_checks]


def build_defs(
    warehouse: WarehouseSettings,
    orchestration: OrchestrationSettings,
    marts: Mapping[str, ModelRelation],
    staging: Mapping[str, ModelRelation],
    manifest: Path,
) -> dg.Definitions:
    """Every quality check, bound to the settings they read (``staging``: each extracted
    table's staging model, by table name; ``manifest``: dbt's, for the identities of what
    each check judges)."""
    return dg.Definitions(
        asset_checks=[
            raw_suite_checks(manifest),
            reconciliation_checks(manifest),
            *row_accounting_checks(staging, manifest),
            freshness_checks(manifest),
            *mart_checks(marts, manifest),
        ],
        resources={"warehouse": warehouse, "orchestration": orchestration},
    )
