"""Raw layer suites: volume and schema of every table ``warehouse extract`` lands.

The schema expectation is the raw-layer contract of ``ingestion/README.md`` written
as data: dlt's snake_case of the source columns, PII masked or dropped, SECRET
columns never selected, plus dlt's and the extractor's bookkeeping columns. A PII
column that reaches the warehouse fails the suite (ERROR: nothing downstream runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from expectations.validation import Severity, Suite, SuiteInputs

#: Source column -> the column it lands as (masked PII).
RENAMED = {
    "users": {"email": "email_hash", "date_of_birth": "birth_year", "postal_code": "postal_prefix"},
}
#: Source columns that never land (dropped PII and SECRET columns).
DROPPED = {
    "users": {"full_name", "phone", "ssn", "government_id", "address_line1"},
    "instructor_profiles": {"tax_id", "bank_account_number"},
    "integrations": {"api_key"},
    "webhooks": {"secret"},
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


def raw_suite(table: str, source_columns: Sequence[str]) -> Suite:
    """The ERROR suite of ``raw.<table>``: exact column set, key integrity, volume, masking."""
    expected = raw_columns(table, source_columns)

    def build(inputs: SuiteInputs) -> list[Any]:
        import great_expectations.expectations as gxe

        expectations: list[Any] = [
            gxe.ExpectTableColumnsToMatchSet(column_set=expected, exact_match=True),
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
        description=f"raw.{table} has exactly the contract's columns (PII masked), a unique "
        "non-null id and rows where the platform must have them.",
        build=build,
    )
