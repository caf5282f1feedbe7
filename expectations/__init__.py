"""Great Expectations suites, one module per layer of the warehouse.

- ``raw``: the raw-layer contract (exact columns, PII masked, keys, volume) of every
  table ``warehouse extract`` lands; ERROR severity.
- ``marts``: the business rules of ``docs/metrics.md`` (ERROR) and the marts'
  distributions (WARN).
- ``validation``: runs one suite in the warehouse (each expectation an aggregate of one
  DuckDB query; GX's SQL datasource does not work on DuckDB) and keeps the Great
  Expectations results for the Data Docs site.

It imports nothing of the project's other packages (only dlt's naming convention, the
one the extractor lands columns with); ``orchestration`` turns each suite into a
Dagster asset check with its severity.
"""
