"""The generator's text encoders produce exactly what the source database stores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator import encode as enc
from generator.platform import DefectRates


def epoch(text: str) -> int:
    return int(np.datetime64(text, "s").astype(np.int64))


def test_money_is_exact_two_decimal_text() -> None:
    assert list(enc.money(np.array([0, 5, 1999, 123456789]))) == [
        "0.00",
        "0.05",
        "19.99",
        "1234567.89",
    ]
    assert list(enc.money(np.array([100, 200]), np.array([False, True]))) == ["1.00", None]


def test_timestamps_keep_pre_1970_dates_and_null_only_minus_one() -> None:
    stamps = enc.timestamps(
        np.array([epoch("1950-03-29T10:00:00"), -1, epoch("2024-02-29T23:59:59")])
    )
    assert list(stamps) == ["1950-03-29 10:00:00", None, "2024-02-29 23:59:59"]
    assert list(enc.dates(np.array([epoch("1969-12-31T00:00:00")]))) == ["1969-12-31"]


def test_no_timestamps_encode_to_an_empty_column() -> None:
    """A mutation with nothing to change (no open service order left to match) encodes no
    time at all; it used to crash the whole `generate --mutate`."""
    encoded = enc.timestamps(np.array([], dtype=np.int64))
    assert encoded.shape == (0,) and encoded.dtype == object
    assert enc.dates(np.array([], dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize(
    ("utc", "new_york"),
    [
        ("2024-01-15T12:00:00", "2024-01-15 07:00:00"),  # EST, UTC-5
        ("2024-07-15T12:00:00", "2024-07-15 08:00:00"),  # EDT, UTC-4
        ("2024-03-10T07:30:00", "2024-03-10 03:30:00"),  # just after the spring-forward gap
        ("2024-11-03T05:30:00", "2024-11-03 01:30:00"),  # first 01:30 of the fall-back hour
        (
            "2024-11-03T06:30:00",
            "2024-11-03 01:30:00",
        ),  # second 01:30: LOCAL columns lose the offset
    ],
)
def test_local_columns_hold_new_york_wall_time(utc: str, new_york: str) -> None:
    wall = enc.new_york_wall_seconds(np.array([epoch(utc)]))
    assert enc.timestamps(wall)[0] == new_york


def test_tsv_escapes_tabs_newlines_backslashes_and_nulls() -> None:
    frame = pd.DataFrame({"a": ["x\ty", None, "back\\slash"], "b": ["line\nbreak", "🚀", ""]})
    assert enc.frame_to_tsv(frame).decode() == "x\\ty\tline\\nbreak\n\\N\t🚀\nback\\\\slash\t\n"


def test_defect_rates_parse_rejects_unknown_names_and_out_of_range() -> None:
    assert DefectRates.parse(["null_currency=0.1"]).null_currency == 0.1
    with pytest.raises(ValueError, match="unknown defect rate 'bogus'"):
        DefectRates.parse(["bogus=0.1"])
    with pytest.raises(ValueError, match="within"):
        DefectRates.parse(["orphan=0.9"])
