"""The SQL models on Apache Spark: each model transpiled by sqlglot to Spark SQL and run as a
CREATE TABLE … AS over the lake registered in the session's catalog (warehouse.spark).

Models run in dependency order and each result replaces its table in the catalog, so a mart
reads the core tables Spark just built, not DuckDB's. Outputs go under ``output_root`` as
`<layer>/<table>/` Parquet folders; the lake's own files are only read.
"""

from __future__ import annotations

from graphlib import TopologicalSorter
from pathlib import Path

from assets.models.sql_model import SqlModel, discover_models
from warehouse.spark import drop_table, location_literal


def dependency_order(models: list[SqlModel]) -> list[SqlModel]:
    """``models`` sorted so that each comes after the models it reads."""
    by_name = {m.qualified_name: m for m in models}
    graph = {name: [u for u in m.upstream() if u in by_name] for name, m in by_name.items()}
    return [by_name[name] for name in TopologicalSorter(graph).static_order()]


def lake_inputs(models: list[SqlModel] | None = None) -> list[str]:
    """The tables ``models`` read that no SQL model builds: what Spark must find in the lake."""
    models = discover_models() if models is None else models
    built = {m.qualified_name for m in models}
    return sorted({u for m in models for u in m.upstream()} - built)


def run_models_on_spark(spark, output_root: Path, models: list[SqlModel] | None = None) -> dict[str, Path]:
    """Run ``models`` (default: every core and mart model) in ``spark``; returns each table's output folder."""
    outputs = {}
    for model in dependency_order(discover_models() if models is None else models):
        folder = Path(output_root) / model.layer / model.name
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {model.layer}")
        drop_table(spark, model.qualified_name)
        statement = (f"CREATE TABLE {model.qualified_name} USING parquet LOCATION '{location_literal(folder)}' AS\n"
                     + model.in_dialect("spark"))
        try:
            spark.sql(statement)
        except Exception as exc:   # py4j and pyspark raise their own classes; name the model either way
            raise RuntimeError(f"{model.path}: the model, transpiled to Spark SQL, failed on Spark: "
                               f"{str(exc).splitlines()[0]}\nMake the model portable (see README, Scaling out).") from exc
        outputs[model.qualified_name] = folder
    return outputs
