"""Serving: publish audited marts to BI tools and render the leadership report.

Owns the last step of the flow (extract -> land -> transform -> check -> *publish*):
the read-only serving DuckDB file, the PostgreSQL published schema, the LookML views
and dbt exposures generated from the dbt manifest, and ``warehouse report``.
It reads the warehouse and dbt's artefacts; nothing upstream imports it.

Plain functions for Dagster assets (the orchestration layer wraps them), in ``steps``:
``publish_step`` (after the gating checks), ``report_step`` (weekly) and ``rollback_step``;
each returns JSON-able metadata and imports nothing from Dagster.
"""
