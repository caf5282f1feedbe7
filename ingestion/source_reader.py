"""Reading the platform database into Arrow, one primary-key range at a time.

MySQL/MariaDB is read with connectorx (the fastest Python reader; dlt's default
backends are several times slower) and the SQLite demo file with the standard
library's ``sqlite3`` (connectorx infers SQLite types from the stored values, which
loses DECIMAL exactness). Both paths produce the same Arrow types for the same
declared column types, so raw looks the same whichever source it came from.

connectorx reads a whole query into memory, so every read is bounded by a primary
key range sized from the table's key density: memory follows the chunk size, not
the table size. Every read is retried with backoff when the connection drops.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import connectorx as cx
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention
from sqlalchemy import create_engine, inspect
from sqlalchemy import types as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ingestion.settings import redact

log = logging.getLogger("ingestion.extract")

ZERO_DATETIME = "0000-00-00 00:00:00"
ZERO_DATE = "0000-00-00"
ZERO_DATES_COLUMN = "_zero_dates"
# A date MySQL accepts in its default sql_mode but no calendar has: a zero year, month or day.
ZERO_PART_TEXT = r"^\d{4}-(00-|\d\d-00)"

# Words in a driver error that mean the connection, not the query, failed: worth a retry.
TRANSIENT_MARKERS = (
    "lost connection",
    "gone away",
    "broken pipe",
    "connection refused",
    "connection reset",
    "connection was killed",
    "query execution was interrupted",
    "can't connect",
    "cannot connect",
    "timed out",
    "server shutdown",
    "unexpected eof",
    "io error",
    "database is locked",
    "driver error",
    "connection closed",
    "server disconnected",
    "ioerror",
)


class SourceError(RuntimeError):
    """A one-line, actionable problem reading the source."""


@dataclass(frozen=True)
class SourceColumn:
    """One selected source column: its SQL, its Arrow type in raw and its dlt hint."""

    name: str
    kind: str  # integer | boolean | decimal | double | text | timestamp | date | binary
    nullable: bool = True
    precision: int | None = None
    scale: int | None = None
    unsigned: bool = False
    bit: bool = False
    # Read as the server's text form: exact where no Arrow type holds every value (DECIMAL
    # wider than 38 digits, TIME from -838:59:59 to 838:59:59).
    as_text: bool = False
    # The table's primary key: never NULL, and declared so (dlt's primary-key hint says so too).
    primary: bool = False
    # The raw column name when dlt's snake_case of ``name`` collides with another column's.
    landed_as: str | None = None
    # The type the source declares, as its catalogue states it (drift reports, probes).
    source_type: str = ""

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type every reader casts this column to."""
        if self.kind == "decimal":
            return pa.decimal128(self.precision or 38, self.scale or 0)
        return {
            "integer": pa.int64(),
            "boolean": pa.bool_(),
            "double": pa.float64(),
            "text": pa.string(),
            "timestamp": pa.timestamp("us"),
            "date": pa.date32(),
            "binary": pa.binary(),
        }[self.kind]

    @property
    def arrow_field(self) -> pa.Field:
        """The Arrow field: the primary key is declared non-nullable, like dlt's key hint."""
        return pa.field(self.name, self.arrow_type, nullable=not self.primary)

    @property
    def dlt_type(self) -> str:
        """The dlt data type: what the raw column is declared as."""
        return {
            "integer": "bigint",
            "boolean": "bool",
            "decimal": "decimal",
            "double": "double",
            "text": "text",
            "timestamp": "timestamp",
            "date": "date",
            "binary": "binary",
        }[self.kind]

    def describe(self) -> str:
        """The raw type in words, for drift errors."""
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.dlt_type


def arrow_schema(columns: Sequence[SourceColumn]) -> pa.Schema:
    """The Arrow schema of a batch of ``columns``."""
    return pa.schema([c.arrow_field for c in columns])


def classify(
    name: str, column_type: sa.TypeEngine, nullable: bool, is_key: bool, boolean: bool
) -> SourceColumn | str:
    """Map a reflected SQL type to the column raw holds, or a reason it is skipped.

    ``is_key``: an integer key of the contract (``id``, ``*_id`` of a spec'd table), which
    stays BIGINT even when the source declares it unsigned; any other BIGINT UNSIGNED (and
    BIT(64)) lands as DECIMAL(20,0), so 2^64-1 fits.
    """
    if boolean:
        return SourceColumn(name, "boolean", nullable)
    if isinstance(column_type, mysql.TINYINT) and getattr(column_type, "display_width", None) == 1:
        return SourceColumn(name, "boolean", nullable)
    if isinstance(column_type, sa.Boolean):
        return SourceColumn(name, "boolean", nullable)
    if isinstance(column_type, mysql.BIT):
        if (getattr(column_type, "length", None) or 1) >= 64:
            return SourceColumn(name, "decimal", nullable, 20, 0, unsigned=True, bit=True)
        return SourceColumn(name, "integer", nullable, bit=True)
    if isinstance(column_type, mysql.YEAR):
        return SourceColumn(name, "integer", nullable)
    if isinstance(column_type, sa.Integer):
        unsigned = bool(getattr(column_type, "unsigned", False))
        if unsigned and isinstance(column_type, sa.BigInteger) and not is_key:
            # 2**64 - 1 does not fit a BIGINT; DECIMAL(20,0) holds every value exactly.
            return SourceColumn(name, "decimal", nullable, 20, 0, unsigned=True)
        return SourceColumn(name, "integer", nullable, unsigned=unsigned)
    if isinstance(column_type, sa.Numeric) and not isinstance(column_type, sa.Float):
        precision = column_type.precision or 38
        scale = column_type.scale or 0
        if precision > 38:
            # Exact as text: no DECIMAL that wide (nor a reader that would not round it).
            return SourceColumn(name, "text", nullable, as_text=True)
        return SourceColumn(name, "decimal", nullable, precision, scale)
    if isinstance(column_type, (sa.Float, mysql.DOUBLE, mysql.REAL)):
        return SourceColumn(name, "double", nullable)
    if isinstance(column_type, sa.DateTime):
        return SourceColumn(name, "timestamp", nullable)
    if isinstance(column_type, sa.Date):
        return SourceColumn(name, "date", nullable)
    if isinstance(column_type, sa.Time):
        # MySQL's TIME is an interval (-838:59:59 to 838:59:59), not a time of day.
        return SourceColumn(name, "text", nullable, as_text=True)
    if isinstance(column_type, (sa.String, sa.Enum, sa.JSON)):
        return SourceColumn(name, "text", nullable)
    if _python_type(column_type) is bytes:
        return SourceColumn(name, "binary", nullable)
    return f"type {column_type!r} has no faithful Arrow mapping"


def _type_text(column_type: sa.TypeEngine) -> str:
    try:
        return str(column_type)
    except Exception:  # a type without a generic SQL rendering
        return repr(column_type)


def _python_type(column_type: sa.TypeEngine) -> type | None:
    try:
        return column_type.python_type
    except NotImplementedError:
        return None


@dataclass
class ReadStats:
    """What one table's reads cost: rows read, zero dates nulled, retries spent."""

    rows_read: int = 0
    zero_dates_nulled: int = 0
    retries: int = 0


class SourceReader:
    """Typed, retried, key-range reads of one source database."""

    def __init__(
        self,
        url: str,
        retries: int = 5,
        backoff_seconds: float = 0.5,
        on_retry: Callable[[str, int, str], None] | None = None,
    ) -> None:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            raise SourceError(
                f"the source URL {redact(url)!r} is malformed: use "
                "mysql+pymysql://user:password@host:3306/database or sqlite:///path/to/file"
            ) from None
        self.dialect = parsed.get_backend_name()
        if self.dialect not in {"mysql", "mariadb", "sqlite"}:
            raise SourceError(
                f"unsupported source {parsed.render_as_string(hide_password=True)}: "
                "use mysql+pymysql://user:password@host:3306/database or sqlite:///path"
            )
        self.dialect = "sqlite" if self.dialect == "sqlite" else "mysql"
        self.url = url
        self.display_url = parsed.render_as_string(hide_password=True)
        self._secrets = [parsed.password] if parsed.password else []
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.on_retry = on_retry
        self._snapshot: _Snapshot | None = None
        self.catalogue_stats = ReadStats()  # retries spent reflecting the catalogue
        self._engine: Any = None
        self._estimates: dict[str, int] | None = None
        # Tables are read two at a time (dlt's worker pool): the lazy members are built once.
        self._lock = threading.RLock()
        if self.dialect == "mysql":
            query = dict(parsed.query)
            query.setdefault("charset", "utf8mb4")
            self.sqlalchemy_url = parsed.set(drivername="mysql+pymysql", query=query)
            self.connectorx_url = parsed.set(drivername="mysql", query={}).render_as_string(
                hide_password=False
            )
        else:
            self.sqlite_path = parsed.database or ""
            if not self.sqlite_path or not Path(self.sqlite_path).is_file():
                # sqlite3 would create an empty file and every table would be "missing".
                raise SourceError(
                    f"the source SQLite file {self.sqlite_path or '(none)'} does not exist: "
                    "check the source URL (or run `warehouse generate` for the demo source)"
                )
            # Read-only: the extractor never writes the source, not even an empty journal.
            self.sqlalchemy_url = parsed.set(
                database=f"file:{self.sqlite_path}", query={"mode": "ro", "uri": "true"}
            )

    # -- catalogue ----------------------------------------------------------------------------------

    def _inspect(self) -> _Snapshot:
        # One reflection per reader: a run sees the catalogue as it was when it started.
        with self._lock:
            if self._snapshot is None:
                self._snapshot = self._with_retries(
                    "the catalogue", self._reflect, self.catalogue_stats
                )
            return self._snapshot

    def _reflect(self) -> _Snapshot:
        """Reflect every table (columns, primary keys) on one connection."""
        with self._small_queries().connect() as conn:
            return self._catalogue(conn)

    def _small_queries(self) -> Any:
        """The engine of the catalogue and the small queries (bounds, probes): one pooled
        connection, so a run opens it once (pymysql builds a TLS context for each new
        connection, ~25 ms)."""
        with self._lock:
            if self._engine is None:
                self._engine = create_engine(self.sqlalchemy_url, pool_pre_ping=True)
            return self._engine

    def _catalogue(self, conn: Any) -> _Snapshot:
        return _Snapshot(inspect(conn))

    def table_names(self) -> list[str]:
        """Every base table of the source database."""
        return self._inspect().tables

    def view_names(self) -> list[str]:
        """Every view of the source database."""
        return self._inspect().views

    def column_names(self, table: str) -> list[str]:
        """Every column name of ``table``, in the source's order."""
        snapshot = self._inspect()
        if table not in snapshot.tables and table not in snapshot.views:
            raise SourceError(f"table {table} does not exist in {self.display_url}")
        return [c["name"] for c in snapshot.columns(table)]

    def columns(
        self,
        table: str,
        never_selected: frozenset[str] = frozenset(),
        booleans: Sequence[str] = (),
        primary_key: str | None = None,
        integer_keys: frozenset[str] = frozenset(),
    ) -> tuple[list[SourceColumn], dict[str, str]]:
        """The columns to select from ``table`` and the ones skipped (name -> reason).

        ``integer_keys`` are the contract's integer keys (BIGINT in raw even when unsigned).
        Columns whose snake_case names collide get distinct raw names (``landed_as``).
        """
        snapshot = self._inspect()
        if table not in snapshot.tables and table not in snapshot.views:
            raise SourceError(f"table {table} does not exist in {self.display_url}")
        selected: list[SourceColumn] = []
        skipped: dict[str, str] = {}
        for column in snapshot.columns(table):
            name = column["name"]
            if name in never_selected:
                continue
            is_key = name in integer_keys
            mapped = classify(name, column["type"], column["nullable"], is_key, name in booleans)
            if isinstance(mapped, str):
                skipped[name] = mapped
            else:
                if name == primary_key:
                    mapped = replace(mapped, primary=True, nullable=False)
                selected.append(replace(mapped, source_type=_type_text(column["type"])))
        return distinct_raw_names(selected), skipped

    def primary_key(self, table: str) -> list[str]:
        """The primary key columns of ``table`` (empty when it has none)."""
        return self._inspect().primary_key(table)

    def close(self) -> None:
        """Release the pooled connection of the small queries."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- reads ----------------------------------------------------------------------------------------

    def quote(self, name: str) -> str:
        """The identifier quoted for this dialect."""
        if self.dialect == "mysql":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def _sqlite(self) -> sqlite3.Connection:
        """A read-only connection to the SQLite source file."""
        return sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True)

    def _select_list(self, columns: Sequence[SourceColumn]) -> str:
        parts: list[str] = []
        zero_checks: list[str] = []
        for c in columns:
            q = self.quote(c.name)
            if self.dialect == "mysql" and c.kind in {"timestamp", "date"}:
                # connectorx panics on a date with a zero part (a zero month or day, which
                # MySQL's default sql_mode accepts): adding nothing to one gives NULL (an
                # invalid date), any other value unchanged; cheaper than testing MONTH and DAY.
                valid = f"({q} + INTERVAL 0 {'SECOND' if c.kind == 'timestamp' else 'DAY'})"
                parts.append(f"{valid} AS {q}")
                if c.nullable:
                    # A NOT NULL column's NULLs after this are its zero dates: counted in
                    # Arrow, with no extra column on the wire (a quarter of activity_logs' read).
                    zero_checks.append(f"COALESCE({q} IS NOT NULL AND {valid} IS NULL, 0)")
            elif self.dialect == "mysql" and (
                c.as_text or (c.kind == "decimal" and not c.unsigned and not _connectorx_exact(c))
            ):
                parts.append(f"CAST({q} AS CHAR) AS {q}")
            elif self.dialect == "mysql" and c.bit:
                parts.append(f"CAST({q} AS UNSIGNED) AS {q}")
            elif self.dialect == "sqlite" and c.kind in {"decimal", "timestamp", "date"}:
                # SQLite stores DECIMAL as REAL/INTEGER: its text form is the exact literal.
                parts.append(f"CAST({q} AS TEXT) AS {q}")
            else:
                parts.append(q)
        if zero_checks:
            parts.append(f"({' + '.join(zero_checks)}) AS {ZERO_DATES_COLUMN}")
        return ", ".join(parts)

    def select_sql(self, table: str, columns: Sequence[SourceColumn], where: str | None) -> str:
        """The SELECT statement for ``columns`` of ``table`` filtered by ``where``."""
        sql = f"SELECT {self._select_list(columns)} FROM {self.quote(table)}"
        return f"{sql} WHERE {where}" if where else sql

    def read(
        self,
        table: str,
        columns: Sequence[SourceColumn],
        where: str | None,
        stats: ReadStats,
    ) -> pa.Table:
        """Rows of ``table`` matching ``where`` as Arrow, typed per ``columns``; retried."""
        sql = self.select_sql(table, columns, where)
        raw = self._with_retries(table, lambda: self._fetch(sql, columns), stats)
        batch, zeros = self._typed(raw, columns)
        stats.rows_read += batch.num_rows
        stats.zero_dates_nulled += zeros
        return batch

    def scalar_row(self, sql: str, table: str, stats: ReadStats) -> list[Any]:
        """One row of a small aggregate query (bounds, counts), retried."""
        rows = self.rows(sql, table, stats)
        return list(rows[0]) if rows else []

    def rows(self, sql: str, table: str, stats: ReadStats) -> list[tuple[Any, ...]]:
        """Every row of a small query (bounds, counts, probes), retried."""

        def fetch() -> list[tuple[Any, ...]]:
            if self.dialect == "mysql":
                # One pooled connection for the many small queries: connectorx would open a
                # new connection (and handshake) for each.
                with self._small_queries().connect() as conn:
                    return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]
            with closing(self._sqlite()) as conn:
                return [tuple(r) for r in conn.execute(sql).fetchall()]

        return self._with_retries(table, fetch, stats)

    def key_ranges(
        self, table: str, key: str, where: str | None, chunk_rows: int, stats: ReadStats
    ) -> tuple[int, list[tuple[int, int]]]:
        """How many rows match, and half-open key ranges ``(lo, hi]`` of about
        ``chunk_rows`` matching rows each (sized from the key density)."""
        q = self.quote(key)
        sql = f"SELECT MIN({q}), MAX({q}), COUNT(*) FROM {self.quote(table)}"
        low, high, count = self.scalar_row(f"{sql} WHERE {where}" if where else sql, table, stats)
        if not count:
            return 0, []
        low, high, count = int(low), int(high), int(count)
        span = high - low + 1
        step = max(1, -(-span * chunk_rows // count))
        ranges: list[tuple[int, int]] = []
        lo = low - 1
        while lo < high:
            hi = min(lo + step, high)
            ranges.append((lo, hi))
            lo = hi
        return count, ranges

    def key_bounds(self, table: str, key: str, stats: ReadStats) -> tuple[int, int] | None:
        """``MIN`` and ``MAX`` of an integer key (two index lookups), or None when empty."""
        q = self.quote(key)
        low, high = self.scalar_row(
            f"SELECT MIN({q}), MAX({q}) FROM {self.quote(table)}", table, stats
        )
        return None if low is None else (int(low), int(high))

    def key_after(self, table: str, key: str, after: int, stats: ReadStats) -> int | None:
        """The smallest integer key above ``after`` (one index lookup), None past the last."""
        q = self.quote(key)
        sql = f"SELECT MIN({q}) FROM {self.quote(table)} WHERE {q} > {int(after)}"
        (following,) = self.scalar_row(sql, table, stats)
        return None if following is None else int(following)

    def estimated_rows(self, table: str) -> int | None:
        """The catalogue's row estimate of ``table`` (progress display only), None if unknown."""
        with self._lock:
            if self._estimates is None:
                self._estimates = {}
                if self.dialect == "mysql":
                    with contextlib.suppress(SourceError):
                        rows = self.rows(
                            "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
                            "WHERE TABLE_SCHEMA = DATABASE()",
                            "the catalogue",
                            ReadStats(),
                        )
                        self._estimates = {str(t): int(n) for t, n in rows if n is not None}
            if self.dialect == "sqlite" and table not in self._estimates:
                # No statistics to ask, and a COUNT(*) of the demo's tables is cheap.
                with contextlib.suppress(sqlite3.Error), closing(self._sqlite()) as conn:
                    count = conn.execute(f"SELECT COUNT(*) FROM {self.quote(table)}").fetchone()
                    self._estimates[table] = int(count[0])
            return self._estimates.get(table)

    # Keys keyset pagination can compare exactly (a float key's text form may not round-trip).
    KEYSET_KINDS = frozenset(
        {"integer", "boolean", "decimal", "text", "timestamp", "date", "binary"}
    )

    def keyset_batches(
        self,
        table: str,
        columns: Sequence[SourceColumn],
        keys: Sequence[str],
        chunk_rows: int,
        stats: ReadStats,
    ) -> Iterator[pa.Table]:
        """Rows of ``table`` in primary-key order, at most ``chunk_rows`` per read: keyset
        pagination (``WHERE key > last ORDER BY key LIMIT n``), for keys of any type and
        any number of columns. Each read is retried."""
        order = ", ".join(self.quote(k) for k in keys)
        last: list[Any] | None = None
        while True:
            where = self._after(keys, last) if last is not None else None
            sql = f"{self.select_sql(table, columns, where)} ORDER BY {order} LIMIT {chunk_rows}"
            raw = self._with_retries(table, partial(self._fetch, sql, columns), stats)
            batch, zeros = self._typed(raw, columns)
            stats.rows_read += batch.num_rows
            stats.zero_dates_nulled += zeros
            if batch.num_rows:
                yield batch
            if batch.num_rows < chunk_rows:
                return
            last = [batch.column(k)[batch.num_rows - 1].as_py() for k in keys]

    def _after(self, keys: Sequence[str], values: Sequence[Any]) -> str:
        """SQL for "the key sorts after ``values``" (lexicographic over the key columns)."""
        terms = []
        for i, key in enumerate(keys):
            equal = [
                f"{self.quote(k)} = {self.literal(v)}"
                for k, v in zip(keys[:i], values, strict=False)
            ]
            terms.append(
                "(" + " AND ".join([*equal, f"{self.quote(key)} > {self.literal(values[i])}"]) + ")"
            )
        return "(" + " OR ".join(terms) + ")"

    def literal(self, value: Any) -> str:
        """``value`` as an SQL literal of this dialect."""
        if isinstance(value, bool):
            return str(int(value))
        if isinstance(value, (int, Decimal)):
            return str(value)
        if isinstance(value, datetime):
            return f"'{value.isoformat(sep=' ')}'"
        if isinstance(value, date):
            return f"'{value.isoformat()}'"
        if isinstance(value, bytes):
            return f"X'{value.hex()}'"
        if isinstance(value, str):
            escaped = value.replace("'", "''")
            if self.dialect == "mysql":
                escaped = escaped.replace("\\", "\\\\")
            return f"'{escaped}'"
        raise SourceError(f"cannot page on a key value {value!r}")

    def stream_batches(
        self, table: str, columns: Sequence[SourceColumn], chunk_rows: int, stats: ReadStats
    ) -> Iterator[pa.Table]:
        """Every row of ``table`` (which has no usable key) through one server-side cursor,
        ``chunk_rows`` at a time: memory stays bounded without a key to page on. A dropped
        connection fails the table (there is no position to resume from)."""
        sql = self.select_sql(table, columns, None)
        try:
            if self.dialect == "mysql":
                engine = create_engine(self.sqlalchemy_url)
                try:
                    with engine.connect() as conn:
                        conn.exec_driver_sql("SET time_zone = '+00:00'")
                        result = conn.execution_options(stream_results=True).exec_driver_sql(sql)
                        names = list(result.keys())
                        for part in result.partitions(chunk_rows):
                            yield self._streamed(names, part, columns, stats)
                finally:
                    engine.dispose()
            else:
                with closing(self._sqlite()) as conn:
                    cursor = conn.execute(sql)
                    names = [d[0] for d in cursor.description]
                    while part := cursor.fetchmany(chunk_rows):
                        yield self._streamed(names, part, columns, stats)
        except SourceError:
            raise
        except Exception as exc:
            cause = getattr(exc, "orig", None) or exc
            message = redact(
                str(cause).strip().splitlines()[0] if str(cause).strip() else repr(exc),
                self._secrets,
            )
            raise SourceError(
                f"reading {table} from {self.display_url} failed: {message}"
            ) from None

    def _streamed(
        self,
        names: Sequence[str],
        rows: Sequence[Sequence[Any]],
        columns: Sequence[SourceColumn],
        stats: ReadStats,
    ) -> pa.Table:
        values = list(zip(*rows, strict=True))
        arrays = []
        for name, column_values in zip(names, values, strict=True):
            column = next((c for c in columns if c.name == name), None)
            arrays.append(_driver_array(column_values, column, self.dialect))
        batch, zeros = self._typed(pa.table(arrays, names=names), columns)
        stats.rows_read += batch.num_rows
        stats.zero_dates_nulled += zeros
        return batch

    def _with_retries(self, table: str, action: Callable[[], Any], stats: ReadStats) -> Any:
        attempt = 0
        while True:
            try:
                return action()
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as exc:  # connectorx raises pyo3 PanicException (BaseException)
                cause = getattr(exc, "orig", None) or exc  # the driver's error under SQLAlchemy's
                message = str(cause).strip().splitlines()[0] if str(cause).strip() else repr(exc)
                transient = any(marker in message.lower() for marker in TRANSIENT_MARKERS)
                message = redact(message, self._secrets)
                if not transient or attempt >= self.retries:
                    raise SourceError(
                        f"reading {table} from {self.display_url} failed"
                        f"{f' after {attempt} retries' if attempt else ''}: {message}; check the "
                        "source URL, the account's rights, and that the server is up"
                    ) from None
                attempt += 1
                stats.retries += 1
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s", table, message, attempt, self.retries, delay
                )
                if self.on_retry:
                    self.on_retry(table, attempt, message)
                time.sleep(delay)

    def _fetch(self, sql: str, columns: Sequence[SourceColumn]) -> pa.Table:
        if self.dialect == "mysql":
            # TIMESTAMP columns are read in UTC whatever the server's zone; DATETIME is untouched.
            return cx.read_sql(
                self.connectorx_url,
                sql,
                return_type="arrow",
                pre_execution_query=[
                    "SET time_zone = '+00:00'",
                    # Keyset reads quote string keys with backslash escapes.
                    "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
                ],
            )
        with closing(self._sqlite()) as conn:
            cursor = conn.execute(sql)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return pa.table(
            {
                n: pa.array(v, type=_sqlite_wire_type(n, columns))
                for n, v in zip(names, values, strict=True)
            }
        )

    def _typed(self, raw: pa.Table, columns: Sequence[SourceColumn]) -> tuple[pa.Table, int]:
        zeros = 0
        if ZERO_DATES_COLUMN in raw.column_names:
            zeros = int(pc.sum(raw.column(ZERO_DATES_COLUMN)).as_py() or 0)
        arrays = []
        for c in columns:
            values = raw.column(c.name)
            if self.dialect == "mysql" and c.kind in {"timestamp", "date"} and not c.nullable:
                zeros += values.null_count
            if self.dialect == "sqlite" and c.kind in {"timestamp", "date"}:
                is_zero = pc.fill_null(pc.match_substring_regex(values, ZERO_PART_TEXT), False)
                zeros += int(pc.sum(is_zero).as_py() or 0)
                values = pc.if_else(is_zero, pa.scalar(None, pa.string()), values)
            arrays.append(_cast(values, c))
        return pa.table(arrays, schema=arrow_schema(columns)), zeros


def _driver_array(values: Sequence[Any], column: SourceColumn | None, dialect: str) -> pa.Array:
    """Python values from a DB-API cursor as an Arrow array ``_typed`` can cast exactly."""
    if column is None:  # the zero-date count
        return pa.array(values, pa.int64())
    if dialect == "sqlite":
        return pa.array(values, _sqlite_wire_type(column.name, [column]))
    if column.kind in {"integer", "boolean"}:
        return pa.array(values, pa.int64())
    if column.kind == "double":
        return pa.array(values, pa.float64())
    if column.kind == "decimal" and column.unsigned:
        return pa.array(values, pa.uint64())
    return pa.array(values)  # Decimal, str, bytes, datetime, date: inferred, then cast


def _connectorx_exact(column: SourceColumn) -> bool:
    # connectorx returns every DECIMAL as decimal128(38, 10) through rust_decimal, whose 96-bit
    # mantissa holds 28 digits: wider or finer decimals travel as text and are parsed exactly.
    return (column.scale or 0) <= 10 and (column.precision or 0) <= 28


def _sqlite_wire_type(name: str, columns: Sequence[SourceColumn]) -> pa.DataType | None:
    for c in columns:
        if c.name == name:
            if c.kind in {"decimal", "timestamp", "date", "text"}:
                return pa.string()
            if c.kind in {"integer", "boolean"}:
                return pa.int64()
            if c.kind == "double":
                return pa.float64()
            if c.kind == "binary":
                return pa.binary()
    return None


def _cast(values: pa.ChunkedArray, column: SourceColumn) -> pa.ChunkedArray:
    target = column.arrow_type
    if values.type == target:
        return values
    if column.kind == "boolean" and not pa.types.is_boolean(values.type):
        return pc.not_equal(pc.cast(values, pa.int64()), 0)
    try:
        return pc.cast(values, target)  # safe cast: overflow or lost digits raise
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SourceError(
            f"column {column.name}: cannot convert {values.type} to {target} without loss ({exc})"
        ) from None


def distinct_raw_names(columns: Sequence[SourceColumn]) -> list[SourceColumn]:
    """``columns`` with a distinct raw name for each one whose snake_case collides with another's
    (``userId``, ``user_id`` and ``User Id`` all become ``user_id``): the column already named
    so keeps it (else the first), the others get ``_2``, ``_3``... in the source's order."""
    groups: dict[str, list[SourceColumn]] = {}
    for c in columns:
        groups.setdefault(snake_case(c.name), []).append(c)
    renamed: dict[str, str] = {}
    taken = set(groups)
    for normalized, group in groups.items():
        if len(group) < 2:
            continue
        keeper = next((c for c in group if c.name == normalized), group[0])
        n = 1
        for c in group:
            if c is keeper:
                continue
            n += 1
            while f"{normalized}_{n}" in taken:
                n += 1
            renamed[c.name] = f"{normalized}_{n}"
            taken.add(renamed[c.name])
    if not renamed:
        return list(columns)
    return [replace(c, landed_as=renamed[c.name]) if c.name in renamed else c for c in columns]


def snake_case(name: str) -> str:
    """dlt's snake_case of an identifier: the raw name of a source table or column."""
    return _naming.normalize_identifier(name)


_naming = NamingConvention()


class _Snapshot:
    """The catalogue of the source at one moment (tables, views, columns, keys)."""

    def __init__(self, inspector: Any) -> None:
        self.tables = sorted(inspector.get_table_names())
        self.views = sorted(inspector.get_view_names())
        self._columns = {t: inspector.get_columns(t) for t in [*self.tables, *self.views]}
        self._keys = {
            t: list(inspector.get_pk_constraint(t).get("constrained_columns") or [])
            for t in self.tables
        }

    def columns(self, table: str) -> list[dict[str, Any]]:
        return self._columns[table]

    def primary_key(self, table: str) -> list[str]:
        return self._keys.get(table, [])
