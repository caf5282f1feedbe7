"""The verdict ledger: every check's last verdict, with the identity of the state it judged.

Each check (a dbt test, a Great Expectations suite, the row accounting, ...) records its
verdict in ``meta.check_verdicts`` together with the relations it read and their identity
(``build_state.relation_identities``) at that moment. A verdict speaks for the warehouse
only while those relations still have that identity, so:

- a check whose relations did not change since its verdict need not run again (its verdict
  is carried over);
- the publication gate (``gate``) accepts only verdicts on the current state: a failed
  ERROR verdict, or a required check with no verdict on the current state (the warehouse
  changed since it ran, or it never ran), refuses the publication.

No Dagster import: the Dagster checks, the dbt asset and ``warehouse publish`` share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from orchestration.build_state import (
    STATE_SCHEMA,
    Graph,
    judged_identity,
    read_facts,
    relation_identities,
)
from serving.catalog import is_served_name
from serving.checks import CheckSummary

VERDICTS = f"{STATE_SCHEMA}.check_verdicts"
_DDL = f"""
create table if not exists {VERDICTS} (
    check_key varchar primary key,
    asset_key varchar,
    judged varchar,
    identity varchar,
    passed boolean,
    severity varchar,
    description varchar,
    run_id varchar,
    evaluated_at timestamp
)
"""


@dataclass(frozen=True)
class Verdict:
    """One check's verdict on the relations it read (``judged``: dbt unique ids or
    ``raw:<table>``) while they had ``identity``."""

    check_key: str  # "<asset key>:<check name>"
    asset_key: str
    judged: tuple[str, ...]
    identity: str
    passed: bool
    severity: str  # ERROR or WARN
    description: str
    run_id: str
    evaluated_at: datetime

    @property
    def blocking(self) -> bool:
        """A failed ERROR verdict stops what is downstream and the publication."""
        return not self.passed and self.severity == "ERROR"

    def is_current(self, identities: Mapping[str, str]) -> bool:
        """Whether the relations it judged still hold what they held then."""
        return self.identity == judged_identity(self.judged, identities)


def verdict(
    check_key: str,
    asset_key: str,
    judged: Iterable[str],
    identities: Mapping[str, str],
    *,
    passed: bool,
    severity: str,
    description: str,
    run_id: str,
) -> Verdict:
    """A verdict on ``judged`` as they are now (their identity taken from ``identities``)."""
    refs = tuple(sorted(set(judged)))
    return Verdict(
        check_key=check_key,
        asset_key=asset_key,
        judged=refs,
        identity=judged_identity(refs, identities),
        passed=passed,
        severity=severity,
        description=description[:2000],
        run_id=run_id,
        evaluated_at=datetime.now(UTC).replace(tzinfo=None),
    )


def record_verdicts(con: duckdb.DuckDBPyConnection, verdicts: Sequence[Verdict]) -> None:
    """Replace each check's previous verdict with ``verdicts`` (one transaction)."""
    if not verdicts:
        return
    con.execute(f"create schema if not exists {STATE_SCHEMA}")
    con.execute(_DDL)
    rows = pa.table(
        {
            "check_key": [v.check_key for v in verdicts],
            "asset_key": [v.asset_key for v in verdicts],
            "judged": [json.dumps(v.judged) for v in verdicts],
            "identity": [v.identity for v in verdicts],
            "passed": [v.passed for v in verdicts],
            "severity": [v.severity for v in verdicts],
            "description": [v.description for v in verdicts],
            "run_id": [v.run_id for v in verdicts],
            "evaluated_at": pa.array([v.evaluated_at for v in verdicts], pa.timestamp("us")),
        }
    )
    con.register("new_verdicts", rows)  # one statement each: executemany costs a query a row
    con.execute("begin transaction")
    try:
        con.execute(
            f"delete from {VERDICTS} where check_key in (select check_key from new_verdicts)"
        )
        con.execute(f"insert into {VERDICTS} select * from new_verdicts")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("new_verdicts")


def read_verdicts(con: duckdb.DuckDBPyConnection) -> dict[str, Verdict]:
    """Every check's last verdict, by check key (empty before the first one)."""
    ((found,),) = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = ? and table_name = 'check_verdicts'",
        [STATE_SCHEMA],
    ).fetchall()
    if not found:
        return {}
    rows = con.execute(
        f"select check_key, asset_key, judged, identity, passed, severity, description, "
        f"run_id, evaluated_at from {VERDICTS}"
    ).fetchall()
    return {
        row[0]: Verdict(
            check_key=row[0],
            asset_key=row[1],
            judged=tuple(json.loads(row[2])),
            identity=row[3],
            passed=bool(row[4]),
            severity=row[5],
            description=row[6] or "",
            run_id=row[7] or "",
            evaluated_at=row[8],
        )
        for row in rows
    }


@dataclass(frozen=True)
class GateVerdict:
    """What the ledger says about publishing the warehouse as it is now."""

    passed: tuple[str, ...]
    failed: tuple[Verdict, ...]  # current verdicts that did not pass (ERROR and WARN)
    unjudged: tuple[tuple[str, str], ...]  # (required check, why it has no current verdict)
    state: str = ""  # the identity of every served relation, as judged

    @property
    def blocking(self) -> tuple[Verdict, ...]:
        """The failed ERROR verdicts."""
        return tuple(v for v in self.failed if v.blocking)

    @property
    def open(self) -> bool:
        """True when the warehouse may be published."""
        return not self.blocking and not self.unjudged

    def reason(self) -> str:
        """Why the gate is shut, in one line (empty when it is open)."""
        if self.blocking:
            first = self.blocking[0]
            more = f" (and {len(self.blocking) - 1} more)" if len(self.blocking) > 1 else ""
            detail = first.description.splitlines()[0][:200] if first.description else "failed"
            return f"ERROR check {first.check_key} failed on the current warehouse{more}: {detail}"
        if self.unjudged:
            check, why = self.unjudged[0]
            more = f" (and {len(self.unjudged) - 1} more)" if len(self.unjudged) > 1 else ""
            return (
                f"check {check} {why}{more}: run `warehouse run` (or `warehouse transform`) "
                "so every check judges the warehouse as it is"
            )
        return ""

    def summary(self) -> CheckSummary:
        """The counts the publication and the report are stamped with."""
        failed = [v.check_key for v in self.failed]
        return CheckSummary(
            passed=len(self.passed),
            failed=len(failed),
            blocking_failures=tuple(v.check_key for v in self.blocking)
            + tuple(check for check, _ in self.unjudged),
            failures=tuple(failed),
            state=self.state,
            reason=self.reason(),
        )


def evaluate_gate(
    verdicts: Mapping[str, Verdict], identities: Mapping[str, str], required: Iterable[str]
) -> GateVerdict:
    """The gate over the current verdicts: every ``required`` check must have one, and no
    current ERROR verdict may have failed (required or not)."""
    current = {key: v for key, v in verdicts.items() if v.is_current(identities)}
    unjudged = []
    for check in sorted(set(required)):
        if check in current:
            continue
        why = (
            "judged the warehouse before it changed"
            if check in verdicts
            else "has no verdict on this warehouse"
        )
        unjudged.append((check, why))
    return GateVerdict(
        passed=tuple(sorted(k for k, v in current.items() if v.passed)),
        failed=tuple(sorted((v for v in current.values() if not v.passed), key=_failed_order)),
        unjudged=tuple(unjudged),
    )


def _failed_order(v: Verdict) -> tuple[bool, str]:
    return (v.severity != "ERROR", v.check_key)


def gate(warehouse_path: Path, manifest_path: Path, required: Iterable[str]) -> GateVerdict:
    """The gate on the warehouse file as it is now (``required``: the check keys that must
    have a current verdict; ``manifest_path``: dbt's, for what each relation reads)."""
    if not warehouse_path.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse_path}: run `warehouse run` first")
    graph = Graph.load(manifest_path)
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        identities = relation_identities(graph, read_facts(con))
        verdicts = read_verdicts(con)
    served = [
        unique_id
        for unique_id, node in graph.nodes.items()
        if node.resource_type == "model" and is_served_name(node.alias)
    ]
    outcome = evaluate_gate(verdicts, identities, required)
    return replace(outcome, state=judged_identity(served, identities))
