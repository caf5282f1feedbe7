"""Where the generator writes: a MySQL/MariaDB server or a SQLite file, by SQLAlchemy URL.

Bulk paths only: ``LOAD DATA LOCAL INFILE`` of the canonical TSV on MySQL, one
``executemany`` per chunk in a single transaction on SQLite. The target refuses a
database that already holds tables unless asked to replace the tables it owns.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from generator.encode import frame_to_tsv
from generator.schema import TABLE_NAMES, metadata


class TargetError(RuntimeError):
    """A one-line, actionable problem with the target database."""


def normalize_url(url: str) -> str:
    """Use PyMySQL for MySQL/MariaDB URLs, whatever driver they name (or none)."""
    parsed = make_url(url)
    if parsed.get_backend_name() in {"mysql", "mariadb"}:
        parsed = parsed.set(drivername="mysql+pymysql")
        query = dict(parsed.query)
        query.setdefault("charset", "utf8mb4")
        parsed = parsed.set(query=query)
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class Target:
    """A connection to the platform database the generator owns tables in."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in {"mysql", "sqlite"}:
            raise TargetError(
                f"unsupported source URL {safe_url(url)}: use mysql+pymysql://... or sqlite:///..."
            )
        if self.dialect == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"local_infile": True} if self.dialect == "mysql" else {}
        self.engine: Engine = create_engine(self.url, connect_args=connect_args)
        try:
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
        except SQLAlchemyError as exc:
            reason = str(exc.orig if hasattr(exc, "orig") else exc).splitlines()[0]
            raise TargetError(
                f"cannot connect to {safe_url(url)} ({reason}); check the URL, that the server is "
                "running and that the database exists"
            ) from None

    @property
    def description(self) -> str:
        return safe_url(self.url)

    def existing_tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def prepare(self, replace: bool) -> None:
        """Create the platform tables, refusing to touch a non-empty database unless replacing."""
        existing = self.existing_tables()
        if existing and not replace:
            shown = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
            raise TargetError(
                f"{self.description} is not empty (tables: {shown}); pass --replace to drop and "
                "recreate the generator's tables, or point --source at an empty database"
            )
        with self.engine.begin() as conn:
            if self.dialect == "mysql":
                conn.execute(text("SET foreign_key_checks = 0"))
            metadata.drop_all(conn, checkfirst=True)
            metadata.create_all(conn)

    def load(self, table: str, frame: pd.DataFrame) -> None:
        """Append one chunk of canonical text rows to ``table``."""
        if frame.empty:
            return
        if self.dialect == "mysql":
            self._load_mysql(table, frame)
        else:
            self._load_sqlite(table, frame)

    def _load_mysql(self, table: str, frame: pd.DataFrame) -> None:
        payload = frame_to_tsv(frame)
        fd, path = tempfile.mkstemp(suffix=f".{table}.tsv")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            columns = ", ".join(f"`{c}`" for c in frame.columns)
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                # Zero dates are part of the source's reality; unique/foreign key checks are
                # the server's business at runtime, not during a bulk load of known-good keys.
                cursor.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
                cursor.execute("SET foreign_key_checks = 0, unique_checks = 0")
                cursor.execute(
                    f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE `{table}` CHARACTER SET utf8mb4 "
                    f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({columns})"
                )
                warnings = cursor.execute("SHOW WARNINGS")
                problems = cursor.fetchall() if warnings else []
                raw.commit()
            finally:
                raw.close()
            if problems:
                raise TargetError(f"loading {table} produced warnings: {problems[:3]}")
        finally:
            os.unlink(path)

    def _load_sqlite(self, table: str, frame: pd.DataFrame) -> None:
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        marks = ", ".join("?" for _ in frame.columns)
        # pandas may hold NULL text as NaN; SQL wants None.
        rows = list(
            frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
        )
        raw = self.engine.raw_connection()
        try:
            raw.cursor().executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', rows)
            raw.commit()
        finally:
            raw.close()

    def row_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                t: int(conn.execute(text(f"select count(*) from {t}")).scalar_one())
                for t in TABLE_NAMES
            }

    def dispose(self) -> None:
        self.engine.dispose()
