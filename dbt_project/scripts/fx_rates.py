"""The deterministic daily FX reference table behind ``seeds/fx_rates_daily.csv``.

The warehouse reports in USD, so every currency the generator prices in needs a
``usd_per_unit`` rate for every UTC date a transaction can fall on. There is no
network at build time, so the rates are synthesised: a mean-reverting random walk
around each currency's price level, driven by CRC32 of (currency, date) and
computed in ``Decimal`` so the output is byte-identical on every platform.

Regenerate the seed with ``uv run python dbt_project/scripts/fx_rates.py``;
``tests/unit/test_fx_seed.py`` fails if the committed CSV drifts from this code.
"""

from __future__ import annotations

import csv
import io
import zlib
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from generator.platform import CURRENCIES, PRICE_LEVEL

# The generator's window is 2024-01-01..2026-06-30 UTC; users and tenants start earlier,
# so the table covers whole years around it.
FIRST_DATE = date(2023, 1, 1)
LAST_DATE = date(2027, 12, 31)
QUANTUM = Decimal("0.00000001")
SEED_PATH = Path(__file__).resolve().parent.parent / "seeds" / "fx_rates_daily.csv"


def daily_rates(
    first: date = FIRST_DATE, last: date = LAST_DATE
) -> list[tuple[str, date, Decimal]]:
    """``(currency, date, usd_per_unit)`` for every generator currency and every date."""
    rows: list[tuple[str, date, Decimal]] = []
    for currency in CURRENCIES:
        anchor = (Decimal(1) / Decimal(str(PRICE_LEVEL[currency]))).quantize(QUANTUM, ROUND_HALF_UP)
        rate = anchor
        day = first
        while day <= last:
            if currency != "USD":
                # A step of -0.30%..+0.30%, pulled back 2% of the way towards the anchor daily.
                step = Decimal(zlib.crc32(f"{currency}:{day.isoformat()}".encode()) % 601 - 300)
                rate = rate * (1 + step / Decimal(100_000)) + (anchor - rate) / 50
                rate = rate.quantize(QUANTUM, ROUND_HALF_UP)
            rows.append((currency, day, rate))
            day += timedelta(days=1)
    return rows


def render_csv(rows: list[tuple[str, date, Decimal]]) -> str:
    """The seed's exact text: header, then one ``currency_code,rate_date,usd_per_unit`` line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["currency_code", "rate_date", "usd_per_unit"])
    for currency, day, rate in rows:
        writer.writerow([currency, day.isoformat(), f"{rate:.8f}"])
    return out.getvalue()


def write_seed(path: Path = SEED_PATH) -> Path:
    """Write the seed CSV (the committed file must equal this output)."""
    path.write_text(render_csv(daily_rates()), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_seed())
