"""dbt exposures for what serving feeds: the leadership report and the BI dashboards.

Generated from the manifest so the lineage names exactly the served models that exist.
The output belongs in the dbt project (e.g. ``dbt_project/models/marts/_marts__exposures.yml``);
serving writes it beside each published version for the dbt engineer to commit.
"""

from __future__ import annotations

from pathlib import Path

import yaml  # type: ignore[import-untyped]

from serving.lookml import load_models

REPORT_MARTS = (
    "mart_learner_ltv",
    "mart_ltv_cohorts",
    "mart_instructor_pnl",
    "mart_marketplace_liquidity",
    "mart_data_quality",
)
OWNER = {"name": "Analytics engineering", "email": "data-team@example.com"}


def build_exposures(manifest_path: Path) -> dict:
    """The exposures document (a dict ready for YAML)."""
    served = [m.name for m in load_models(manifest_path)]
    marts = [n for n in served if n.startswith("mart_")]
    report = [n for n in REPORT_MARTS if n in served]

    def refs(names: list[str]) -> list[str]:
        return [f"ref('{name}')" for name in names]

    return {
        "version": 2,
        "exposures": [
            {
                "name": "leadership_weekly_report",
                "label": "Leadership weekly report",
                "type": "analysis",
                "maturity": "high",
                "description": "`warehouse report`: KPIs vs the previous period, LTV by cohort, "
                "instructor profitability, marketplace liquidity and data quality; "
                "rendered weekly from the serving file and emailed.",
                "depends_on": refs(report),
                "owner": dict(OWNER),
            },
            {
                "name": "metabase_dashboards",
                "label": "Metabase dashboards",
                "type": "dashboard",
                "maturity": "medium",
                "description": "Metabase on the PostgreSQL published schema (or the read-only "
                "serving DuckDB file), as the BI guide sets it up.",
                "depends_on": refs(served),
                "owner": dict(OWNER),
            },
            {
                "name": "superset_dashboards",
                "label": "Superset dashboards",
                "type": "dashboard",
                "maturity": "medium",
                "description": "Superset on PostgreSQL or duckdb-engine read-only.",
                "depends_on": refs(served),
                "owner": dict(OWNER),
            },
            {
                "name": "looker_explores",
                "label": "Looker explores",
                "type": "dashboard",
                "maturity": "medium",
                "description": "Looker on PostgreSQL through the generated LookML views.",
                "depends_on": refs([*marts, *[n for n in served if n.startswith("fct_")]]),
                "owner": dict(OWNER),
            },
        ],
    }


def write_exposures(manifest_path: Path, out_path: Path) -> Path:
    """Write the exposures YAML and return its path."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated from dbt's manifest by serving/exposures.py: do not edit.\n"
    out_path.write_text(header + yaml.safe_dump(build_exposures(manifest_path), sort_keys=False))
    return out_path
