"""One-line descriptions of what can go wrong with the warehouse file, for people.

Kept free of heavy imports: the command line's error handler uses it for any command.
"""

from __future__ import annotations

import re
from pathlib import Path


def describe_warehouse_error(path: Path | str | None, exc: BaseException) -> str:
    """One line naming what is wrong with the warehouse file and what to do about it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lower = text.lower()
    if path is None and (quoted := re.search(r'"([^"]+\.duckdb[^"]*)"', text)):
        path = quoted.group(1)  # DuckDB names the file it could not use
    where = f"the warehouse {path}" if path else "the warehouse"
    if "lock" in lower and ("conflicting" in lower or "could not set lock" in lower):
        return (
            f"{where} is in use by another process (DuckDB allows one writing process per "
            "file): wait for it to finish, then rerun"
        )
    if any(w in lower for w in ("permission denied", "not permitted", "read-only", "readonly")):
        return (
            f"cannot write {where}: permission denied (a read-only file or folder); make it "
            "writable, or choose another --warehouse"
        )
    if "no space left" in lower or "file too large" in lower or "disk is full" in lower:
        return f"cannot write {where}: the disk is full; free space, then rerun"
    if any(w in lower for w in ("not a valid duckdb", "corrupt", "invalid", "magic", "serializ")):
        return (
            f"{where} is not a readable DuckDB database (damaged, or another kind of file): "
            "restore it from a backup, or move it away to start a new warehouse"
        )
    return f"cannot use {where}: {text}"
