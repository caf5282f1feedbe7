"""Dagster definitions, one module per concern; ``orchestration.definitions`` merges them.

- ``ingestion``: the source tables (observed) and the dlt assets that land them in ``raw``;
- ``transform``: the dbt project's sources, models, seeds, snapshots and tests;
- ``quality``: Great Expectations suites, reconciliation and freshness as asset checks;
- ``serving``: the publication to the serving file and PostgreSQL, and the report;
- ``automation``: jobs, schedules, the one-writer rule and alerting sensors.

Each module exposes ``build_defs(...)``, taking the settings it needs; none reads the
environment at import time.
"""
