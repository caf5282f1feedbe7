"""Schema drift: how the columns a table lands today differ from what raw already holds.

A new source column lands (reported); a dropped column stays in raw, NULL from then
on (reported); a changed type is cast into the existing column when no value can be
lost, and otherwise stops that table with an error naming table, column, old and new
type. The other tables still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

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
        if self.data_type == "bigint" and self.precision:
            return f"integer({self.precision} bits)"
        return self.data_type

    def arrow_type(self) -> pa.DataType:
        """The Arrow type of a value landing in this column."""
        if self.data_type == "decimal":
            return pa.decimal128(self.precision or 38, self.scale or 0)
        if self.data_type == "bigint":
            return pa.int32() if self.precision == 32 else pa.int64()
        return {
            "text": pa.string(),
            "bool": pa.bool_(),
            "double": pa.float64(),
            "timestamp": pa.timestamp("us"),
            "date": pa.date32(),
            "time": pa.time64("us"),
            "binary": pa.binary(),
        }[self.data_type]


@dataclass
class Drift:
    """What changed for one table, and the casts that keep the old column types."""

    new_columns: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    casts: dict[str, LandedType] = field(default_factory=dict)


def _widens(old: LandedType, new: LandedType) -> bool:
    """True when every value of ``new`` fits ``old`` exactly."""
    if old.data_type == "text":
        return new.data_type != "binary"
    if old.data_type == "bigint" and new.data_type == "bigint":
        return (old.precision or 64) >= (new.precision or 64)
    if old.data_type == "bigint" and new.data_type == "bool":
        return True
    if old.data_type == "decimal" and new.data_type == "decimal":
        old_int = (old.precision or 38) - (old.scale or 0)
        new_int = (new.precision or 38) - (new.scale or 0)
        return (new.scale or 0) <= (old.scale or 0) and new_int <= old_int
    if old.data_type == "decimal" and new.data_type == "bigint":
        return (old.precision or 38) - (old.scale or 0) >= 19
    return old.data_type == "timestamp" and new.data_type == "date"


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
        elif old != new:
            if not _widens(old, new):
                raise TableDriftError(table, name, old.describe(), new.describe())
            drift.casts[name] = old
    drift.dropped_columns = sorted(set(known) - set(landed))
    return drift
