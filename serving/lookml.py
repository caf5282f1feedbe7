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

from serving.catalog import ForeignKey, is_served_name, model_docs

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
    """A served dbt model: name, schema, description and typed, described columns, its
    primary key and foreign keys (``serving.catalog.model_docs``)."""

    name: str
    description: str
    columns: dict[str, dict] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    keys: frozenset[tuple[str, ...]] = frozenset()


def load_models(
    manifest_path: Path, column_types: dict[str, dict[str, str]] | None = None
) -> list[ModelColumns]:
    """Served models (mart_*, fct_*, dim_*) from the manifest, with their keys."""
    manifest = json.loads(manifest_path.read_text())
    docs = model_docs(manifest_path)
    models = []
    for _, node in sorted(manifest.get("nodes", {}).items()):
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
        model = docs.get(name)
        primary = model.primary_key if model and set(model.primary_key) <= set(columns) else ()
        models.append(
            ModelColumns(
                name,
                node.get("description") or "",
                columns,
                primary,
                tuple(f for f in (model.foreign_keys if model else ()) if f.column in columns),
                frozenset(model.keys) if model else frozenset(),
            )
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
    if (name,) == model.primary_key:
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


def expanded_names(entry: dict) -> list[str]:
    """The fields a dimension group becomes in Looker: one per timeframe (``<name>_<frame>``)."""
    return [f"{entry['name']}_{frame}" for frame in entry.get("timeframes", [])]


def build_view(model: ModelColumns, schema: str) -> tuple[dict, dict[str, str]]:
    """One LookML view, and each column's field to reference it by (a time column's group by
    its ``_raw`` timeframe). Field names stay unique once Looker expands the dimension
    groups, and every view has one primary key."""
    view: dict = {"name": model.name, "sql_table_name": f"{schema}.{model.name}"}
    dimensions: list[dict] = []
    groups: list[tuple[str, dict]] = []
    for name, column in model.columns.items():
        key, entry = _dimension(model, name, column)
        if key == "dimensions":
            dimensions.append(entry)
        else:
            groups.append((name, entry))
    measures = _measures(model)
    measure_names = {m["name"] for m in measures}
    for dimension in dimensions:
        # a stored per-row ratio or average must not be summed: the measure of the same
        # name re-aggregates it correctly, the row value stays reachable but hidden
        if dimension["name"] in measure_names:
            dimension["name"] = f"{dimension['name']}_row"
            dimension["hidden"] = "yes"
    taken = measure_names | {d["name"] for d in dimensions}
    refs = {d["sql"].removeprefix("${TABLE}."): d["name"] for d in dimensions}
    for column_name, entry in groups:
        # created_at and created_date would both be the group "created": the second one, and
        # any group whose timeframes meet another field, is named after its whole column
        for candidate in (entry["name"], column_name, f"{column_name}_local"):
            entry["name"] = candidate
            names = expanded_names(entry)
            if candidate not in taken and not taken & set(names):
                break
        taken |= {entry["name"], *expanded_names(entry)}
        refs[column_name] = f"{entry['name']}_raw"
    if model.primary_key and not any(d.get("primary_key") == "yes" for d in dimensions):
        # a composite key, or a date: Looker keys a view on one plain dimension
        parts = [f"${{TABLE}}.{c}" for c in model.primary_key]
        dimensions.append(
            {
                "name": "primary_key",
                "primary_key": "yes",
                "hidden": "yes",
                "type": "string",
                "description": f"The row's key: {', '.join(model.primary_key)}.",
                "sql": parts[0] if len(parts) == 1 else f"concat_ws('|', {', '.join(parts)})",
            }
        )
    if dimensions:
        view["dimensions"] = dimensions
    if groups:
        view["dimension_groups"] = [entry for _, entry in groups]
    view["measures"] = measures
    return view, refs


def render_view(model: ModelColumns, view: dict) -> str:
    """One LookML view file's text (``view``: ``build_view``'s)."""
    description = "\n".join(f"# {line}".rstrip() for line in model.description.splitlines())
    header = "# Generated from dbt's manifest by serving/lookml.py: do not edit.\n"
    header += f"{description}\n" if description else ""
    return header + (lkml.dump({"views": [view]}) or "")


def build_model(
    models: list[ModelColumns], refs: dict[str, dict[str, str]], connection: str
) -> dict:
    """The LookML model: an explore per fact and mart, joined many-to-one to every model its
    foreign keys reference (a second reference to the same model joins it under an alias).
    A reference to an SCD2 dimension's entity key (not unique there: one row per version)
    joins its current version."""
    by_name = {m.name: m for m in models}
    explores = []
    for model in models:
        if not model.name.startswith(("fct_", "mart_")):
            continue
        joins: list[dict] = []
        used: set[str] = {model.name}
        for fk in model.foreign_keys:
            if fk.table not in refs or fk.target_column not in refs[fk.table]:
                continue
            target = by_name[fk.table]
            current = ""
            if (fk.target_column,) not in target.keys:
                if "is_current" not in target.columns:
                    continue  # many rows per key: a join would fan the explore out
                current = f" and ${{{{alias}}.{refs[fk.table]['is_current']}}}"
            alias = fk.table if fk.table not in used else f"{fk.column}_{fk.table}"
            used.add(alias)
            join = {
                "name": alias,
                "type": "left_outer",
                "relationship": "many_to_one",
                "sql_on": f"${{{model.name}.{refs[model.name][fk.column]}}} = "
                f"${{{alias}.{refs[fk.table][fk.target_column]}}}"
                + current.replace("{alias}", alias),
            }
            if alias != fk.table:
                join["from"] = fk.table
                join["view_label"] = f"{fk.table} ({fk.column})"
            joins.append(join)
        explore: dict = {"name": model.name}
        if model.description:
            explore["description"] = model.description.splitlines()[0]
        if joins:
            explore["joins"] = joins
        explores.append(explore)
    return {"connection": connection, "includes": ["/views/*.view.lkml"], "explores": explores}


def write_views(
    manifest_path: Path,
    out_dir: Path,
    schema: str = "analytics",
    column_types: dict[str, dict[str, str]] | None = None,
    connection: str = "warehouse",
) -> list[Path]:
    """Write ``<model>.view.lkml`` for every served model and the model file
    ``<connection>.model.lkml`` with its explores; remove the view files of models no longer
    served. Return the paths written (the model file last)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    models = load_models(manifest_path, column_types)
    written = []
    refs = {}
    for model in models:
        view, refs[model.name] = build_view(model, schema)
        path = out_dir / f"{model.name}.view.lkml"
        path.write_text(render_view(model, view))
        written.append(path)
    for stale in set(out_dir.glob("*.view.lkml")) - set(written):
        stale.unlink()
    model_path = out_dir / f"{connection}.model.lkml"
    header = "# Generated from dbt's manifest by serving/lookml.py: do not edit.\n"
    model_path.write_text(header + (lkml.dump(build_model(models, refs, connection)) or ""))
    return [*written, model_path]
