"""Finding one's way from SQL: ``SHOW TABLES``, ``SHOW ALL TABLES``, ``DESCRIBE layer.table`` and
queries on ``information_schema.tables`` / ``.columns`` / ``.schemata``, for every role, showing only
what the role may read; and "did you mean" for a table or column name the guard does not know.

The catalog a role sees is built from the contracts, never read from DuckDB's own catalog: the
``information_schema`` tables are three more tables for the guard (every column public), and at
run time their references are pointed at rows made here for the role (`with_catalog`), so no
catalog function or view of DuckDB is ever reached. ``SHOW`` and ``DESCRIBE`` are rewritten into
queries on them before the guard checks anything else.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlglot import exp

from schemas.model import Column, Contract
from schemas.roles import Role, visible_columns

CATALOG_LAYER = "information_schema"
_V, _I = "VARCHAR", "INTEGER"
# name → (description, ((column, type, description), ...))
CATALOG_TABLES = {
    "schemata": ("The layers (schemas) the role may read.", (
        ("catalog_name", _V, "The role's database."), ("schema_name", _V, "The layer: core, marts, …"))),
    "tables": ("Every table the role may read, with what it holds.", (
        ("table_catalog", _V, "The role's database."), ("table_schema", _V, "The table's layer."),
        ("table_name", _V, "The table's name."), ("table_type", _V, "Always BASE TABLE."),
        ("table_comment", _V, "What the table holds (its contract's description)."))),
    "columns": ("Every column the role may read, with its type, classification and meaning.", (
        ("table_catalog", _V, "The role's database."), ("table_schema", _V, "The table's layer."),
        ("table_name", _V, "The table's name."), ("column_name", _V, "The column's name."),
        ("ordinal_position", _I, "Position of the column in the table, from 1."),
        ("is_nullable", _V, "YES when the column may be empty."), ("data_type", _V, "The DuckDB type."),
        ("classification", _V, "public, internal, confidential or restricted."),
        ("column_comment", _V, "What the column means, with its unit (its contract's description)."))),
}


@lru_cache(maxsize=1)
def catalog_contracts() -> dict[str, Contract]:
    """The ``information_schema`` tables as contracts the guard checks like any other (all public)."""
    made = {}
    for table, (description, columns) in CATALOG_TABLES.items():
        cols = tuple(Column(name=n, logical_type="string" if t == _V else "integer", physical_type=t, description=d,
                            classification="public", required=False, unique=False, primary_key=False,
                            partitioned=False, options={}, pii="none", masking=None, allowed_values=None)
                     for n, t, d in columns)
        made[f"{CATALOG_LAYER}.{table}"] = Contract(
            layer=CATALOG_LAYER, table=table, description=description, owner="shuku", columns=cols,
            partitioning=None, freshness_days=None, retention_years=None,
            path=Path(f"{CATALOG_LAYER}.{table}"))
    return made


def catalog_rows(role: Role, contracts: dict[str, Contract]) -> dict[str, list[tuple]]:
    """The rows of each ``information_schema`` table for ``role``: its tables and columns only."""
    rows: dict[str, list[tuple]] = {"schemata": [], "tables": [], "columns": []}
    layers = []
    for name, contract in sorted(contracts.items()):
        if contract.layer == CATALOG_LAYER:
            continue
        seen = visible_columns(role, contract)
        if not seen:
            continue
        if contract.layer not in layers:
            layers.append(contract.layer)
        rows["tables"].append((role.name, contract.layer, contract.table, "BASE TABLE", contract.description))
        rows["columns"] += [(role.name, contract.layer, contract.table, c.name, i, "NO" if c.required else "YES",
                             c.physical_type.upper(), c.classification, c.description)
                            for i, c in enumerate(seen, 1)]
    rows["schemata"] = [(role.name, layer) for layer in layers]
    return rows


@dataclass(frozen=True)
class Discovery:
    """A ``SHOW``/``DESCRIBE`` statement as the query that answers it, or why it cannot be answered."""

    sql: str | None = None
    table: str | None = None        # the table a DESCRIBE names, to be checked as a query on it would be
    layer: str | None = None        # the layer a SHOW TABLES FROM names, to be checked likewise
    refusal: str | None = None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _describe(table: exp.Expression) -> Discovery:
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        return Discovery(refusal="DESCRIBE takes a table, written layer.table (e.g. DESCRIBE marts.key_figures); "
                                 "describing a query is not allowed.")
    layer, name = table.db, table.name
    sql = ("SELECT column_name, data_type AS column_type, is_nullable AS \"null\", classification, "
           "column_comment AS description FROM information_schema.columns "
           f"WHERE table_schema = {_literal(layer)} AND table_name = {_literal(name)} ORDER BY ordinal_position")
    return Discovery(sql, table.sql("duckdb"))


def discovery(tree: exp.Expression) -> Discovery | None:
    """The query answering a ``SHOW``/``DESCRIBE`` statement; None for any other statement."""
    if isinstance(tree, exp.Describe):
        return _describe(tree.this)
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "SHOW":
        from sqlglot import parse_one
        from sqlglot.errors import ParseError
        try:
            target = parse_one(str(tree.expression), read="duckdb", into=exp.Table)
        except ParseError:
            target = None
        if target is not None and target.db:
            return _describe(target)
        return Discovery(refusal=f"SHOW {str(tree.expression).strip()} is not allowed: use SHOW TABLES, SHOW ALL TABLES, "
                                 "DESCRIBE layer.table or information_schema.tables / .columns.")
    if not isinstance(tree, exp.Show):
        return None
    what = str(tree.this).upper()
    where, layer = "", None
    if tree.args.get("from_") is not None:
        layer = tree.args["from_"].name
        where = f" WHERE t.table_schema = {_literal(layer)}"
    if what == "TABLES":
        return Discovery("SELECT t.table_schema AS schema, t.table_name AS name, t.table_comment AS description "
                         f"FROM information_schema.tables AS t{where} ORDER BY schema, name", layer=layer)
    if what == "ALL TABLES":
        return Discovery("SELECT t.table_catalog AS database, t.table_schema AS schema, t.table_name AS name, "
                         "array_agg(c.column_name ORDER BY c.ordinal_position) AS column_names, "
                         "array_agg(c.data_type ORDER BY c.ordinal_position) AS column_types, false AS temporary "
                         "FROM information_schema.tables AS t JOIN information_schema.columns AS c "
                         "ON c.table_schema = t.table_schema AND c.table_name = t.table_name"
                         f"{where} GROUP BY t.table_catalog, t.table_schema, t.table_name ORDER BY schema, name", layer=layer)
    return Discovery(refusal=f"SHOW {what} is not allowed: use SHOW TABLES, SHOW ALL TABLES, DESCRIBE layer.table "
                             "or information_schema.tables / .columns.")


def _closeness(wanted: str, candidate: str) -> float:
    """How alike two names are by their last part (``utilization`` and ``marts.space_utilisation``):
    a shared layer says nothing, and a wrong one should not hide the table."""
    wanted, candidate = wanted.lower().rsplit(".", 1)[-1], candidate.lower().rsplit(".", 1)[-1]
    score = difflib.SequenceMatcher(None, wanted, candidate).ratio()
    return max(score, 0.8) if len(wanted) >= 4 and wanted in candidate else score


def nearest(wanted: str, candidates: list[str], cutoff: float = 0.65) -> list[str]:
    """Up to three of ``candidates`` nearest to ``wanted``, nearest first."""
    scored = sorted(((_closeness(wanted, c), c) for c in set(candidates)), key=lambda s: (-s[0], s[1]))
    return [c for score, c in scored if score >= cutoff][:3]


def did_you_mean(wanted: str, candidates: list[str]) -> str:
    """`` Did you mean a, b?`` naming the ``candidates`` nearest to ``wanted``; '' when none is near."""
    near = nearest(wanted, candidates)
    return f" Did you mean {', '.join(near)}?" if near else ""


def readable_tables(role: Role, contracts: dict[str, Contract]) -> list[str]:
    """``layer.table`` of every table the role may read, the ``information_schema`` ones included."""
    return [name for name, c in contracts.items() if c.layer == CATALOG_LAYER or visible_columns(role, c)]


def readable_columns(role: Role, contracts: dict[str, Contract], tables: list[str]) -> list[str]:
    """Names of the columns of ``tables`` the role may read."""
    return [c.name for t in tables if t in contracts for c in
            (contracts[t].columns if contracts[t].layer == CATALOG_LAYER else visible_columns(role, contracts[t]))]


def unknown_columns(tree: exp.Expression, contracts: dict[str, Contract], tables: list[str]) -> list[str]:
    """Names of columns in the query that none of its tables holds and no alias in it defines."""
    known = {c.lower() for t in tables if t in contracts for c in contracts[t].column_names}
    aliases = {a.alias.lower() for a in tree.find_all(exp.Alias)}
    aliases |= {c.alias_or_name.lower() for c in tree.find_all(exp.CTE, exp.TableAlias)}
    for alias in tree.find_all(exp.TableAlias):
        aliases |= {col.name.lower() for col in alias.columns}
    return sorted({c.name for c in tree.find_all(exp.Column)
                   if c.name and c.name.lower() not in known and c.name.lower() not in aliases})
