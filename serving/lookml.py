"""LookML views generated from dbt's manifest: one view per mart, fact and dimension.

Dimensions come from the model's columns (types from the contract's ``data_type``, or
from the serving file when a column has none); descriptions from the dbt docs. Measures
follow docs/metrics.md: money columns sum, ratios are re-aggregated as Σ numerator / Σ
denominator (never an average of ratios), cohort LTV averages and medians use mature
learners only, take rate = Σ platform revenue / Σ gross sales.

A ratio's numerator and denominator are found, in order, from the column's dbt ``meta``
(``{numerator: col, denominator: col}``), from ``<ratio>_numerator``/``<ratio>_denominator``
columns, or from ``KNOWN_RATIOS``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import lkml

from serving.catalog import is_served_name

NUMBER_TYPES = ("int", "decimal", "numeric", "double", "float", "real", "bigint", "hugeint")
TIME_FRAMES = ["raw", "time", "date", "week", "month", "quarter", "year"]
DATE_FRAMES = ["raw", "date", "week", "month", "quarter", "year"]

# ratio -> (numerator, denominator): docs/metrics.md's definitions under likely column names
KNOWN_RATIOS: dict[str, tuple[str, str]] = {
    "take_rate": ("platform_revenue_usd", "gross_sales_usd"),
    "sell_through_30d_rate": ("sell_through_30d_numerator", "sell_through_30d_denominator"),
    "never_sold_share": ("courses_never_sold", "courses_published"),
    "buyer_seller_ratio": ("paying_people", "selling_instructors"),
    "fill_rate_24h": ("orders_matched_within_24h", "orders_requested"),
    "cancelled_without_match_share": ("orders_cancelled_without_match", "orders_requested"),
    "top_decile_sales_share": ("top_decile_gross_sales_usd", "instructor_gross_sales_usd"),
    # cohort averages over mature learners, pooled across cohorts
    **{
        f"avg_ltv_{n}_usd": (f"ltv_{n}_mature_sum_usd", f"mature_learners_{n}")
        for n in (30, 90, 365)
    },
}


@dataclass
class ModelColumns:
    """A served dbt model: name, schema, description and typed, described columns."""

    name: str
    description: str
    columns: dict[str, dict] = field(default_factory=dict)
    primary_key: str | None = None


def load_models(
    manifest_path: Path, column_types: dict[str, dict[str, str]] | None = None
) -> list[ModelColumns]:
    """Served models (mart_*, fct_*, dim_*) from the manifest, with single-column unique keys."""
    manifest = json.loads(manifest_path.read_text())
    unique_keys: dict[str, list[str]] = {}
    for node in manifest.get("nodes", {}).values():
        meta = node.get("test_metadata") or {}
        if node.get("resource_type") == "test" and meta.get("name") == "unique":
            column = meta.get("kwargs", {}).get("column_name") or node.get("column_name")
            if node.get("attached_node") and column:
                unique_keys.setdefault(node["attached_node"], []).append(column)
    models = []
    for unique_id, node in sorted(manifest.get("nodes", {}).items()):
        name = node.get("alias") or node.get("name", "")
        if node.get("resource_type") != "model" or not is_served_name(name):
            continue
        types = (column_types or {}).get(name, {})
        columns: dict[str, dict] = {}
        for column_name, column in node.get("columns", {}).items():
            columns[column_name] = {
                "data_type": (column.get("data_type") or types.get(column_name) or "").lower(),
                "description": column.get("description") or "",
                "meta": column.get("meta") or {},
            }
        for column_name, data_type in types.items():  # built but undocumented columns
            columns.setdefault(
                column_name, {"data_type": data_type.lower(), "description": "", "meta": {}}
            )
        keys = [k for k in unique_keys.get(unique_id, []) if k in columns]
        models.append(
            ModelColumns(name, node.get("description") or "", columns, keys[0] if keys else None)
        )
    return models


def _is_number(data_type: str) -> bool:
    return any(t in data_type for t in NUMBER_TYPES)


def _field_label(name: str) -> str:
    return name.replace("_", " ").replace(" usd", " (USD)").capitalize()


def _dimension(model: ModelColumns, name: str, column: dict) -> tuple[str, dict]:
    data_type = column["data_type"]
    sql = f"${{TABLE}}.{name}"
    entry: dict = {"name": name}
    if column["description"]:
        entry["description"] = column["description"]
    if "timestamp" in data_type or data_type == "date":
        group_name = re.sub(r"_(at|date)$", "", name)
        entry.update(
            {
                "name": group_name,
                "type": "time",
                "timeframes": TIME_FRAMES if "timestamp" in data_type else DATE_FRAMES,
                "sql": sql,
            }
        )
        if data_type == "date":
            entry.update({"datatype": "date", "convert_tz": "no"})
        return "dimension_groups", entry
    if data_type.startswith("bool"):
        entry["type"] = "yesno"
    elif _is_number(data_type):
        entry["type"] = "number"
        if name.endswith("_usd"):
            entry["value_format_name"] = "usd"
    else:
        entry["type"] = "string"
    if name == "tenant_id" or name.endswith("_id"):
        entry["type"] = "number" if _is_number(data_type) else "string"
        entry["value_format_name"] = "id"
    if name == model.primary_key:
        entry["primary_key"] = "yes"
    entry["sql"] = sql
    return "dimensions", entry


def _ratio_parts(name: str, column: dict, columns: dict[str, dict]) -> tuple[str, str] | None:
    meta = column.get("meta") or {}
    if meta.get("numerator") in columns and meta.get("denominator") in columns:
        return meta["numerator"], meta["denominator"]
    base = re.sub(r"_(rate|share|ratio)$", "", name)
    for stem in (name, base):
        if f"{stem}_numerator" in columns and f"{stem}_denominator" in columns:
            return f"{stem}_numerator", f"{stem}_denominator"
    known = KNOWN_RATIOS.get(name)
    if known and known[0] in columns and known[1] in columns:
        return known
    return None


def _measures(model: ModelColumns) -> list[dict]:
    columns = model.columns
    measures: list[dict] = [{"name": "count", "type": "count", "description": "Rows."}]
    ratio_parts = {
        name: parts
        for name, column in columns.items()
        if (parts := _ratio_parts(name, column, columns))
    }
    for name, (numerator, denominator) in ratio_parts.items():
        measures.append(
            {
                "name": name,
                "type": "number",
                "description": f"Σ {numerator} / Σ {denominator} (a ratio of sums, as docs/metrics.md defines it).",
                "sql": f"sum(${{TABLE}}.{numerator}) * 1.0 / nullif(sum(${{TABLE}}.{denominator}), 0)",
                "value_format_name": "percent_2"
                if "rate" in name or "share" in name
                else "decimal_2",
            }
        )
    ltv = re.compile(r"^ltv_(\d+)_usd$")
    cohort_avg = re.compile(r"^(avg|median)_ltv_(\d+)_usd$")
    for name, column in columns.items():
        if name in ratio_parts or not _is_number(column["data_type"]):
            continue
        if name.startswith("balance_owed"):
            continue  # a running or lifetime balance: summing it over months double-counts
        if match := ltv.match(name):
            days = match[1]
            mature = f"is_mature_{days}"
            # lkml's spelling of ``filters: [is_mature_N: "yes"]``
            filters = [[{mature: "yes"}]] if mature in columns else []
            for kind in ("average", "median"):
                measures.append(
                    {
                        "name": f"{'avg' if kind == 'average' else 'median'}_ltv_{days}_usd",
                        "type": kind,
                        "sql": f"${{TABLE}}.{name}",
                        "filters__all": filters,
                        "description": f"{kind.capitalize()} {days}-day LTV over learners mature at {days} days.",
                        "value_format_name": "usd",
                    }
                )
            if filters:
                measures.append(
                    {
                        "name": f"mature_learners_{days}",
                        "type": "count",
                        "filters__all": filters,
                        "description": f"Learners whose first payment is at least {days} days before the as-of time.",
                    }
                )
        elif match := cohort_avg.match(name):
            # averages of cohorts re-weighted by each cohort's mature learners
            weight = next(
                (
                    c
                    for c in columns
                    if re.fullmatch(
                        rf"(n_)?mature_learners_{match[2]}|mature_{match[2]}_learners", c
                    )
                ),
                None,
            )
            if match[1] == "avg" and weight:
                measures.append(
                    {
                        "name": f"avg_ltv_{match[2]}_usd",
                        "type": "number",
                        "sql": f"sum(${{TABLE}}.{name} * ${{TABLE}}.{weight}) / nullif(sum(${{TABLE}}.{weight}), 0)",
                        "description": f"Average {match[2]}-day LTV over mature learners of the selected cohorts.",
                        "value_format_name": "usd",
                    }
                )
        elif (
            name.endswith("_usd")
            or re.match(r"^(n_|num_)?.*(_count|_size)$", name)
            or name.startswith(
                ("rows_", "courses_", "orders_", "mature_learners_", "hard_deletes", "quarantined_")
            )
        ):
            measures.append(
                {
                    "name": f"total_{name}",
                    "type": "sum",
                    "sql": f"${{TABLE}}.{name}",
                    "description": f"Sum of {name}.",
                    **({"value_format_name": "usd"} if name.endswith("_usd") else {}),
                }
            )
    if {"instructor_earnings_usd", "payouts_paid_usd"} <= columns.keys():
        measures.append(
            {
                "name": "balance_owed_usd",
                "type": "number",
                "sql": "sum(${TABLE}.instructor_earnings_usd) - sum(${TABLE}.payouts_paid_usd)",
                "description": "Σ earnings - Σ paid payouts (lifetime when not filtered by month).",
                "value_format_name": "usd",
            }
        )
    return measures


def render_view(model: ModelColumns, schema: str) -> str:
    """One LookML view file's text."""
    view: dict = {"name": model.name, "sql_table_name": f"{schema}.{model.name}"}
    dimensions: dict[str, list[dict]] = {"dimensions": [], "dimension_groups": []}
    for name, column in model.columns.items():
        key, entry = _dimension(model, name, column)
        dimensions[key].append(entry)
    measures = _measures(model)
    measure_names = {m["name"] for m in measures}
    for dimension in dimensions["dimensions"]:
        # a stored per-row ratio or average must not be summed: the measure of the same
        # name re-aggregates it correctly, the row value stays reachable but hidden
        if dimension["name"] in measure_names:
            dimension["name"] = f"{dimension['name']}_row"
            dimension["hidden"] = "yes"
    view.update({k: v for k, v in dimensions.items() if v})
    view["measures"] = measures
    description = "\n".join(f"# {line}".rstrip() for line in model.description.splitlines())
    header = "# Generated from dbt's manifest by serving/lookml.py: do not edit.\n"
    header += f"{description}\n" if description else ""
    return header + (lkml.dump({"views": [view]}) or "")


def write_views(
    manifest_path: Path,
    out_dir: Path,
    schema: str = "analytics",
    column_types: dict[str, dict[str, str]] | None = None,
) -> list[Path]:
    """Write ``<model>.view.lkml`` for every served model; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for model in load_models(manifest_path, column_types):
        path = out_dir / f"{model.name}.view.lkml"
        path.write_text(render_view(model, schema))
        written.append(path)
    return written


def serving_column_types(
    serving_path: Path, schema: str = "analytics"
) -> dict[str, dict[str, str]]:
    """Column types of the published tables, for models whose contract omits them."""
    import duckdb

    con = duckdb.connect(str(serving_path), read_only=True)
    try:
        rows = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = ?",
            [schema],
        ).fetchall()
    finally:
        con.close()
    types: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        types.setdefault(table, {})[column] = data_type
    return types
