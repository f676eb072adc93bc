"""The lake as Apache Spark sees it: every table's Parquet folder registered, as it is, in a
SparkSession's catalog under the same `layer.table` name the DuckDB views use.

Spark discovers the Hive partition folders (`event_date=2025-09-01`) itself and infers the
types from the files; `register_lake` then compares what Spark read with the contract, so a
layout or type Spark would read differently fails here with the table and column named.
PySpark is an optional extra (requirements-spark.lock): this module never imports it, it is
handed a session.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from schemas.model import Contract, load_contracts
from schemas.vocabulary import DATA_LAYERS, META
from warehouse.lake.paths import table_dir
from warehouse.lake.views import has_data, view_sql
from warehouse.settings import Settings

SPARK_LAYERS = (*DATA_LAYERS, META)   # quarantine keys are text that looks like dates


def spark_type(physical_type: str) -> str:
    """A contract's DuckDB type in Spark SQL (TIMESTAMP is Spark's TIMESTAMP_NTZ: no time zone)."""
    return exp.DataType.build(physical_type, dialect="duckdb").sql("spark")


def spark_schema_problems(contract: Contract, schema) -> list[str]:
    """Differences between a Spark StructType read from the files and the contract's columns."""
    actual = {field.name: field.dataType.simpleString().upper() for field in schema.fields}
    problems = []
    for column in contract.columns:
        wanted = spark_type(column.physical_type)
        if column.name not in actual:
            problems.append(f"  - missing column {column.name} ({wanted})")
        elif actual[column.name] != wanted:
            problems.append(f"  ~ column {column.name}: contract says {wanted}, Spark reads {actual[column.name]}")
    problems += [f"  + unexpected column {name} ({kind})" for name, kind in actual.items()
                 if name not in contract.column_names]
    return problems


def location_literal(path) -> str:
    """A path as the inside of a single-quoted Spark SQL string."""
    return str(path).replace("\\", "\\\\").replace("'", "\\'")


def drop_table(spark, name: str) -> None:
    """Forget ``name`` in the catalog, view or table; an external table's files stay."""
    if spark.catalog.tableExists(name):
        kind = "VIEW" if spark.catalog.getTable(name).tableType == "VIEW" else "TABLE"
        spark.sql(f"DROP {kind} {name}")


def register_table(spark, settings: Settings, contract: Contract) -> None:
    """(Re)register one table: an external Parquet table over its folder, or a typed empty view."""
    name = contract.qualified_name
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {contract.layer}")
    drop_table(spark, name)
    if not has_data(settings, contract):
        spark.sql(sqlglot.transpile(view_sql(settings, contract), read="duckdb", write="spark")[0])
        return
    # A whole table may keep extra files below its folder (meta tables write one per run);
    # a partitioned one is read through its key=value folders.
    options = "" if contract.partition_column else "OPTIONS (recursiveFileLookup 'true') "
    spark.sql(f"CREATE TABLE {name} USING parquet {options}LOCATION '{location_literal(table_dir(settings, contract))}'")
    if contract.partition_column:
        spark.sql(f"MSCK REPAIR TABLE {name}")
    problems = spark_schema_problems(contract, spark.table(name).schema)
    if problems:
        raise ValueError(f"{name} ({table_dir(settings, contract)}) reads differently in Spark than its contract "
                         f"{contract.path.name} says:\n" + "\n".join(problems)
                         + "\nRewrite the table's files (re-run its asset) or fix the contract.")


def register_lake(spark, settings: Settings, tables: list[str] | None = None,
                  layers: tuple[str, ...] = SPARK_LAYERS) -> list[str]:
    """Register ``tables`` (`layer.table` names; default every table of ``layers``) in
    ``spark``'s catalog; returns the names registered."""
    contracts = load_contracts()
    names = [n for n, c in contracts.items() if c.layer in layers] if tables is None else list(dict.fromkeys(tables))
    for name in names:
        register_table(spark, settings, contracts[name])
    return names
