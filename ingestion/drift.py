"""Schema drift: how the columns a table lands today differ from what raw already holds.

Compared with raw's own columns (DuckDB's catalogue: what is really there):

- a new source column lands (reported);
- a dropped column stays in raw, NULL from then on (reported);
- a widened type (DECIMAL precision up, a wider integer, DATE to DATETIME) evolves raw:
  the raw column (and dlt's staging copy) is altered to the new type first (reported);
- a narrowed type (every new value fits raw's type, e.g. DECIMAL(12,2) to (11,1)) lands
  into raw's type unchanged (reported as narrowed);
- any other change (a new value might not fit, e.g. DECIMAL to VARCHAR) stops that table
  with one line naming table, column, old and new type. The other tables still load.

Source-side changes that need nothing in raw (VARCHAR(32) to (64), DATETIME to
DATETIME(6)) are reported from the source types stored after the last run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ingestion.transaction import transaction

# Columns the pipeline adds itself: never drift (_dlt_id only in warehouses loaded before it
# was dropped from the contract).
BOOKKEEPING = frozenset({"_dlt_id", "_dlt_load_id", "_source_deleted_at"})


class TableDriftError(RuntimeError):
    """A source type change that would lose data; the table is stopped, not loaded."""

    def __init__(self, table: str, column: str, old: str, new: str) -> None:
        super().__init__(
            f"{table}.{column} changed type from {old} to {new}, which would lose data; "
            f"{table} was not loaded (other tables were). Widen or re-create raw.{table} on purpose."
        )
        self.table, self.column, self.old, self.new = table, column, old, new


@dataclass(frozen=True)
class LandedType:
    """A raw column's type as dlt declares it."""

    data_type: str
    precision: int | None = None
    scale: int | None = None

    def describe(self) -> str:
        """The type in words, e.g. ``decimal(12,2)``."""
        if self.data_type == "decimal":
            return f"decimal({self.precision},{self.scale})"
        if self.data_type == "bigint" and self.precision and self.precision != 64:
            return f"integer({self.precision} bits)"
        return self.data_type

    def arrow_type(self) -> pa.DataType:
        """The Arrow type of a value landing in this column."""
        if self.data_type == "decimal":
            return pa.decimal128(self.precision or 38, self.scale or 0)
        if self.data_type == "bigint":
            return {8: pa.int8(), 16: pa.int16(), 32: pa.int32()}.get(
                self.precision or 64, pa.int64()
            )
        return {
            "text": pa.string(),
            "bool": pa.bool_(),
            "double": pa.float64(),
            "timestamp": pa.timestamp("us"),
            "date": pa.date32(),
            "time": pa.time64("us"),
            "binary": pa.binary(),
        }[self.data_type]

    def duckdb_type(self) -> str:
        """The DuckDB type raw declares for this column."""
        if self.data_type == "decimal":
            return f"DECIMAL({self.precision},{self.scale})"
        if self.data_type == "bigint":
            return {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER", 128: "HUGEINT"}.get(
                self.precision or 64, "BIGINT"
            )
        return {
            "text": "VARCHAR",
            "bool": "BOOLEAN",
            "double": "DOUBLE",
            "timestamp": "TIMESTAMP",
            "date": "DATE",
            "time": "TIME",
            "binary": "BLOB",
        }[self.data_type]

    @classmethod
    def from_duckdb(cls, declared: str) -> LandedType | None:
        """The type of a raw column from DuckDB's catalogue (None when it has no equivalent)."""
        text = declared.upper()
        if match := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", text):
            return cls("decimal", int(match.group(1)), int(match.group(2)))
        integers = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64, "HUGEINT": 128}
        if text in integers:
            return cls("bigint", integers[text])
        simple = {
            "VARCHAR": "text",
            "BOOLEAN": "bool",
            "DOUBLE": "double",
            "FLOAT": "double",
            "TIMESTAMP": "timestamp",
            "TIMESTAMP WITH TIME ZONE": "timestamp",
            "DATE": "date",
            "TIME": "time",
            "BLOB": "binary",
        }
        return cls(simple[text]) if text in simple else None


@dataclass
class Drift:
    """What changed for one table: new and dropped columns, types widened in raw, types
    narrowed at the source (landed into raw's type: ``casts``)."""

    new_columns: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    casts: dict[str, LandedType] = field(default_factory=dict)
    widened: dict[str, tuple[LandedType, LandedType]] = field(default_factory=dict)
    narrowed: dict[str, tuple[LandedType, LandedType]] = field(default_factory=dict)
    # source-side type changes raw needs nothing for: column -> (old, new) source types
    source_changes: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def changes_columns(self) -> bool:
        """True when the landed columns differ from raw's (a re-read must land every row)."""
        return bool(self.new_columns or self.dropped_columns or self.casts or self.widened)


_INT_DIGITS = {8: 3, 16: 5, 32: 10, 64: 19, 128: 39}


def fits(value: LandedType, into: LandedType) -> bool:
    """True when every value of type ``value`` is held exactly by type ``into``."""
    if value == into:
        return True
    if into.data_type == "text":
        return value.data_type not in {"binary"}
    if into.data_type == "bigint" and value.data_type == "bigint":
        return (into.precision or 64) >= (value.precision or 64)
    if into.data_type == "bigint" and value.data_type == "bool":
        return True
    if into.data_type == "decimal" and value.data_type == "decimal":
        into_int = (into.precision or 38) - (into.scale or 0)
        value_int = (value.precision or 38) - (value.scale or 0)
        return (value.scale or 0) <= (into.scale or 0) and value_int <= into_int
    if into.data_type == "decimal" and value.data_type == "bigint":
        return (into.precision or 38) - (into.scale or 0) >= _INT_DIGITS.get(
            value.precision or 64, 39
        )
    return into.data_type == "timestamp" and value.data_type == "date"


def _same_family(old: LandedType, new: LandedType) -> bool:
    numbers = {"bigint", "decimal", "bool"}
    if old.data_type in numbers and new.data_type in numbers:
        return True
    if {old.data_type, new.data_type} == {"date", "timestamp"}:
        return True
    # raw TIME from before TIME landed as text: the text holds every old value exactly
    return old.data_type == "time" and new.data_type == "text"


def _union(old: LandedType, new: LandedType) -> LandedType | None:
    """The narrowest type of the same family holding both, if any."""
    if fits(old, new):
        return new
    if old.data_type == "decimal" and new.data_type == "decimal":
        scale = max(old.scale or 0, new.scale or 0)
        digits = max(
            (old.precision or 38) - (old.scale or 0), (new.precision or 38) - (new.scale or 0)
        )
        return LandedType("decimal", digits + scale, scale) if digits + scale <= 38 else None
    return None


def detect_drift(
    table: str,
    existing: Mapping[str, LandedType],
    landed: Mapping[str, LandedType],
) -> Drift:
    """Compare today's landed columns with raw's; raise ``TableDriftError`` on a lossy change."""
    drift = Drift()
    if not existing:
        return drift  # first load: nothing to drift from
    known = {n: t for n, t in existing.items() if n not in BOOKKEEPING}
    for name, new in landed.items():
        old = known.get(name)
        if old is None:
            drift.new_columns.append(name)
        elif old == new:
            continue
        elif fits(new, old):
            drift.casts[name] = old
            drift.narrowed[name] = (old, new)
        elif _same_family(old, new) and (union := _union(old, new)) is not None:
            drift.widened[name] = (old, union)
            if union != new:
                drift.casts[name] = union
        else:
            raise TableDriftError(table, name, old.describe(), new.describe())
    drift.dropped_columns = sorted(set(known) - set(landed))
    return drift


def raw_columns(conn: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, dict[str, LandedType]]:
    """Every raw table's columns and types, from DuckDB's catalogue: table -> column -> type."""
    rows = conn.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = ? order by table_name, ordinal_position",
        [dataset],
    ).fetchall()
    tables: dict[str, dict[str, LandedType]] = {}
    for table, column, declared in rows:
        landed = LandedType.from_duckdb(declared)
        tables.setdefault(table, {})[column] = landed if landed else LandedType(declared.lower())
    return tables


def widen_raw(
    conn: duckdb.DuckDBPyConnection,
    datasets: tuple[str, ...],
    table: str,
    widened: Mapping[str, tuple[LandedType, LandedType]],
) -> None:
    """Alter ``table``'s widened columns to their new types, in raw and in dlt's staging copy
    (the merge loads there first), in one transaction."""
    if not widened:
        return
    present = {
        (schema, column)
        for schema, column in conn.execute(
            "select table_schema, column_name from information_schema.columns where table_name = ?",
            [table],
        ).fetchall()
    }
    with transaction(conn):
        for dataset in datasets:
            for column, (_, new) in widened.items():
                if (dataset, column) in present:
                    conn.execute(
                        f'alter table {dataset}."{table}" alter column "{column}" '
                        f"type {new.duckdb_type()}"
                    )
