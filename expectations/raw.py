"""Raw layer suites: volume and schema of every table ``warehouse extract`` lands.

The schema expectation is the raw-layer contract of ``ingestion/README.md`` written
as data: dlt's snake_case of the source columns, PII masked or dropped, SECRET
columns never selected, plus dlt's and the extractor's bookkeeping columns.

- ``raw_suite`` (ERROR: nothing downstream runs when it fails): every expected column is
  there, no PII or SECRET column of the contract reached raw, the key holds, the table
  has rows where the platform must have them;
- ``raw_columns_suite`` (WARN: reported, never blocking): raw has exactly the expected
  columns. A column the source added lands (the extractor holds back the personal-looking
  ones) and shows up here as an extra column, a warning, not a failure.

``great_expectations`` is imported inside the functions that use it, on purpose: it takes
seconds to import, and the CLI and the Dagster definitions load these modules without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from expectations.validation import Severity, Suite, SuiteInputs
from ingestion.specs import TABLE_SPECS, PiiTreatment

#: Source column -> the column it lands as (masked PII), from the table specs.
RENAMED = {
    name: {column: rule.landed_as for column, rule in spec.pii.items() if rule.landed_as}
    for name, spec in TABLE_SPECS.items()
    if any(rule.landed_as for rule in spec.pii.values())
}
#: Source columns that never land (dropped PII and SECRET columns), from the table specs.
DROPPED = {
    name: {c for c, rule in spec.pii.items() if rule.treatment is PiiTreatment.DROP}
    | set(spec.secret)
    for name, spec in TABLE_SPECS.items()
    if spec.secret or any(rule.treatment is PiiTreatment.DROP for rule in spec.pii.values())
}
#: Bookkeeping columns every raw table carries.
BOOKKEEPING = ("_dlt_load_id", "_source_deleted_at")
#: Tables the platform cannot run without: an empty one means a broken load.
NEVER_EMPTY = frozenset(
    {"tenants", "users", "instructor_profiles", "courses", "enrollments", "payments"}
)


@cache
def _snake_case(name: str) -> str:
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier(name)


def raw_columns(table: str, source_columns: Sequence[str]) -> list[str]:
    """The columns ``raw.<table>`` must have, exactly, given the source table's columns."""
    renamed = RENAMED.get(table, {})
    dropped = DROPPED.get(table, set())
    columns = [_snake_case(renamed.get(c, c)) for c in source_columns if c not in dropped]
    return [*columns, *BOOKKEEPING]


def never_landed(table: str) -> list[str]:
    """Columns that must never be in ``raw.<table>``: its PII in clear and its SECRET columns,
    by source name and by snake_case."""
    names = set(DROPPED.get(table, set())) | set(RENAMED.get(table, {}))
    return sorted(names | {_snake_case(n) for n in names})


def raw_suite(table: str, source_columns: Sequence[str]) -> Suite:
    """The ERROR suite of ``raw.<table>``: the expected columns, no PII or SECRET column, key
    integrity, volume, masking. Extra columns are ``raw_columns_suite``'s (a warning)."""
    expected = raw_columns(table, source_columns)

    def build(inputs: SuiteInputs) -> list[Any]:
        import great_expectations.expectations as gxe

        expectations: list[Any] = [
            gxe.ExpectTableColumnsToMatchSet(column_set=expected, exact_match=False),
            # GX has no "column must not exist": raw's own columns without the forbidden ones,
            # matched exactly, fail (listing them as unexpected) when one of them is there.
            gxe.ExpectTableColumnsToMatchSet(
                column_set=[c for c in inputs.columns if c not in never_landed(table)],
                exact_match=True,
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="id"),
            gxe.ExpectColumnValuesToBeUnique(column="id"),
            gxe.ExpectColumnValuesToNotBeNull(column="_dlt_load_id"),
            gxe.ExpectTableRowCountToBeBetween(min_value=1 if table in NEVER_EMPTY else 0),
        ]
        if table == "users":
            expectations.append(
                gxe.ExpectColumnValuesToMatchRegex(column="email_hash", regex=r"^[0-9a-f]{64}$")
            )
        return expectations

    return Suite(
        name=f"raw.{table}",
        table=table,
        severity=Severity.ERROR,
        description=f"raw.{table} has the contract's columns and no PII or SECRET one in clear, "
        "a unique non-null id and rows where the platform must have them.",
        build=build,
    )


def raw_columns_suite(table: str, source_columns: Sequence[str]) -> Suite:
    """The WARN suite of ``raw.<table>``: exactly the contract's columns (an extra column is a
    source addition to review and classify, not a failure)."""
    expected = raw_columns(table, source_columns)

    def build(inputs: SuiteInputs) -> list[Any]:
        import great_expectations.expectations as gxe

        return [gxe.ExpectTableColumnsToMatchSet(column_set=expected, exact_match=True)]

    return Suite(
        name=f"raw.{table}.columns",
        table=table,
        severity=Severity.WARN,
        description=f"raw.{table} has no column beyond the contract's (an addition warns, "
        "never blocks).",
        build=build,
        query="select * from {relation} limit 0",
    )
