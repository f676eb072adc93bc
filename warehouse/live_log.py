"""The access log as it is now, for the roles that read ``meta``: a query on it through the SQL
guard reads the lake's log files, not the copy made at the last publish.

A role database is a copy made at publish time, so an auditor would otherwise see the queries of
the day only after the next publish. The guard has already decided on the query; here its
references to the access log are pointed at the live rows (the role's visible columns only),
handed to DuckDB as an Arrow table, so the read-only, no-external-access connection stays as it is.
"""

from __future__ import annotations

import duckdb
import polars as pl
import sqlglot
from sqlglot import exp

from schemas.model import contract_for
from schemas.roles import visible_columns
from warehouse.guard import DIALECT, GuardDecision
from warehouse.lake.paths import data_files
from warehouse.settings import Settings

LIVE_NAME = "shuku_live_access_log"


def live_rows(settings: Settings, role: str, table: str) -> pl.DataFrame:
    """Every stored row of ``table``, in the columns ``role`` sees, in the published table's order."""
    contract = contract_for(table)
    columns = [c.name for c in visible_columns(role, contract)]
    files = sorted(data_files(settings, table))
    if not files:
        return pl.DataFrame(schema={c: contract.polars_schema()[c] for c in columns})
    return pl.concat([pl.read_parquet(f, hive_partitioning=False).select(columns) for f in files], how="vertical_relaxed")


def pointed_at(sql: str, table: str, target: str = LIVE_NAME) -> str | None:
    """``sql`` with every reference to ``table`` (``layer.name``) pointed at ``target`` (the live rows);
    None when it has none."""
    layer, name = table.split(".")
    tree = sqlglot.parse_one(sql, read=DIALECT)
    found = False
    for ref in list(tree.find_all(exp.Table)):
        if ref.name == name and ref.db == layer and not ref.catalog:
            alias = ref.alias or name
            ref.replace(exp.alias_(exp.to_table(target), alias, table=True))
            found = True
    for column in tree.find_all(exp.Column):
        if column.db == layer and column.table == name:
            column.set("db", None)
    return tree.sql(dialect=DIALECT) if found else None


def with_live_log(con: duckdb.DuckDBPyConnection, settings: Settings, role: str, decision: GuardDecision,
                  table: str) -> str:
    """The SQL to run for an allowed ``decision``: its own, or, when it reads ``table`` and the role
    sees that table, the same query on the live rows (registered on ``con``)."""
    sql = decision.normalised
    if table not in decision.objects or not visible_columns(role, contract_for(table)):
        return sql
    pointed = pointed_at(sql, table)
    if pointed is None:
        return sql
    con.register(LIVE_NAME, live_rows(settings, role, table).to_arrow())
    return pointed
