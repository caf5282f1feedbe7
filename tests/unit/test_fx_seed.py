"""The committed FX seed is exactly what dbt_project/scripts/fx_rates.py produces."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from decimal import Decimal

from generator.platform import CURRENCIES, WINDOW_END, WINDOW_START
from ingestion.settings import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "dbt_project" / "scripts" / "fx_rates.py"


def load_fx_module():
    spec = importlib.util.spec_from_file_location("fx_rates", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_seed_equals_the_function_output() -> None:
    fx = load_fx_module()
    committed = fx.SEED_PATH.read_text(encoding="utf-8")
    assert committed == fx.render_csv(fx.daily_rates())


def test_every_currency_has_a_rate_for_every_day_of_the_generator_window() -> None:
    fx = load_fx_module()
    rows = fx.daily_rates()
    first = datetime.fromtimestamp(WINDOW_START - 90 * 86_400, tz=UTC).date()
    last = datetime.fromtimestamp(WINDOW_END + 86_400, tz=UTC).date()
    days = (last - first).days + 1
    for currency in CURRENCIES:
        covered = {day for code, day, _ in rows if code == currency and first <= day <= last}
        assert len(covered) == days, currency
    assert {rate for code, _, rate in rows if code == "USD"} == {Decimal("1.00000000")}


def test_rates_are_deterministic_and_plausible() -> None:
    fx = load_fx_module()
    assert fx.daily_rates() == fx.daily_rates()
    by_currency: dict[str, list[Decimal]] = {}
    for code, _, rate in fx.daily_rates():
        by_currency.setdefault(code, []).append(rate)
    # A walk that stays within 10% of the price level keeps converted amounts realistic.
    eur = by_currency["EUR"]
    assert Decimal("0.98") < min(eur) and max(eur) < Decimal("1.20")
    jpy = by_currency["JPY"]
    assert Decimal("0.0060") < min(jpy) and max(jpy) < Decimal("0.0074")
