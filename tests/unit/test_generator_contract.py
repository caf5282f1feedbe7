"""The generator builds the database the source contract (ingestion/specs.py) describes:
every spec'd table with exactly the spec's columns, in order; the money column the
reconciliation sums is DECIMAL(12,2); the integer keys are integers; the PII and SECRET
columns the specs mask or never select exist (a rule on a missing column protects nothing)."""

from __future__ import annotations

import pytest
from sqlalchemy import Integer, Numeric

from generator.schema import metadata
from ingestion.specs import TABLE_SPECS, contract_integer_keys


@pytest.mark.parametrize("name", sorted(TABLE_SPECS))
def test_the_generated_table_is_the_contracts(name: str) -> None:
    spec = TABLE_SPECS[name]
    table = metadata.tables[name]
    assert tuple(c.name for c in table.columns) == spec.columns
    if spec.money is not None:
        money = table.columns[spec.money].type
        assert isinstance(money, Numeric) and (money.precision, money.scale) == (12, 2)
    for key in contract_integer_keys(name):
        assert isinstance(table.columns[key].type, Integer), key
    assert set(spec.pii) | set(spec.secret) | set(spec.local_columns) <= set(spec.columns)
    assert spec.primary_key in spec.columns
    assert spec.cursor is None or spec.cursor in spec.columns


def test_every_money_column_of_a_table_with_money_is_declared() -> None:
    """A table whose rows carry money names the column the reconciliation sums."""
    for name, spec in TABLE_SPECS.items():
        money = [
            c.name
            for c in metadata.tables[name].columns
            if isinstance(c.type, Numeric) and (c.type.precision, c.type.scale) == (12, 2)
        ]
        assert (spec.money is None) == (not money), name
        assert spec.money is None or spec.money in money, name
