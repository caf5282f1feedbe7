"""Vectorised encoders: numpy arrays -> the text the source database stores.

Every generated column is kept as text (or None for NULL) so that the same bytes
feed MySQL's LOAD DATA, SQLite's inserts and the manifest's content checksums.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

NULL_TIME = np.int64(-1)
ZERO_DATE = "0000-00-00 00:00:00"


def timestamps(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds (UTC; exactly -1 for NULL) -> 'YYYY-MM-DD HH:MM:SS' strings or None."""
    seconds = np.asarray(seconds, dtype=np.int64)
    if seconds.size == 0:  # np.char.replace sizes its output from the longest string
        return np.empty(0, dtype=object)
    text = np.char.replace(seconds.astype("datetime64[s]").astype(str), "T", " ").astype(object)
    text[seconds == NULL_TIME] = None
    return text


def dates(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds (-1 for NULL) -> 'YYYY-MM-DD' strings or None."""
    seconds = np.asarray(seconds, dtype=np.int64)
    text = seconds.astype("datetime64[s]").astype("datetime64[D]").astype(str).astype(object)
    text[seconds == NULL_TIME] = None
    return text


def new_york_wall_seconds(seconds: np.ndarray) -> np.ndarray:
    """UTC epoch seconds -> the epoch seconds of the same instant's New York wall time.

    The result is what a server on America/New_York writes into a DATETIME column
    without an offset (docs/source.md: LOCAL columns). -1 stays -1.
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    valid = seconds >= 0
    out = seconds.copy()
    if valid.any():
        utc = pd.to_datetime(seconds[valid], unit="s", utc=True)
        wall = utc.tz_convert("America/New_York").tz_localize(None)
        out[valid] = wall.to_numpy().astype("datetime64[s]").astype(np.int64)
    return out


def money(cents: np.ndarray, null_mask: np.ndarray | None = None) -> np.ndarray:
    """Integer cents -> exact 'D.CC' decimal strings (or None where masked)."""
    cents = np.asarray(cents, dtype=np.int64)
    whole = (cents // 100).astype(str)
    frac = np.char.zfill((cents % 100).astype(str), 2)
    text = np.char.add(np.char.add(whole, "."), frac).astype(object)
    if null_mask is not None:
        text[null_mask] = None
    return text


def integers(values: np.ndarray, null_mask: np.ndarray | None = None) -> np.ndarray:
    text = np.asarray(values, dtype=np.int64).astype(str).astype(object)
    if null_mask is not None:
        text[null_mask] = None
    return text


def strings(values: np.ndarray, null_mask: np.ndarray | None = None) -> np.ndarray:
    text = np.asarray(values).astype(object)
    if null_mask is not None:
        text = text.copy()
        text[null_mask] = None
    return text


def join(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise concatenation of string arrays and constants."""
    result: Any = None
    for part in parts:
        piece = np.asarray(part).astype(str) if not isinstance(part, str) else part
        result = piece if result is None else np.char.add(result, piece)
    assert result is not None
    return np.asarray(result, dtype=object)


def tsv_escape(column: pd.Series) -> pd.Series:
    """Escape one text column for MySQL LOAD DATA's default format (\\N is NULL)."""
    text = column.astype(object)
    mask = text.isna()
    escaped = (
        text.where(~mask, "")
        .astype(str)
        .str.replace("\\", "\\\\", regex=False)
        .str.replace("\t", "\\t", regex=False)
        .str.replace("\n", "\\n", regex=False)
    )
    return escaped.where(~mask, "\\N")


def frame_to_tsv(frame: pd.DataFrame) -> bytes:
    """The canonical text of a table chunk: one escaped, tab-separated line per row."""
    if frame.empty:
        return b""
    escaped = [tsv_escape(frame[column]) for column in frame.columns]
    line = escaped[0]
    for column in escaped[1:]:
        line = line.str.cat(column, sep="\t")
    return ("\n".join(line.tolist()) + "\n").encode("utf-8")
