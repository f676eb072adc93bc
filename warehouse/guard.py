"""The SQL guard: decide whether a role may run a query (`warehouse.guarded` logs the decision
and runs what is allowed).

A query is allowed only when every check below passes; anything the guard cannot resolve is
refused, never let through by default.

1. It parses (sqlglot, DuckDB dialect) into exactly one statement.
2. That statement is a query: SELECT, UNION / INTERSECT / EXCEPT, WITH … SELECT, or FROM-first.
   Nothing anywhere inside it is DDL, DML or a command (ATTACH, PRAGMA, SET, COPY, …).
3. Every function is on ``ALLOWED_FUNCTIONS``: scalar, aggregate and window functions that
   compute on values. Everything else is refused, so table functions and functions that read
   files, the environment, settings or the catalog (read_parquet, glob, getenv,
   current_setting, duckdb_tables, query, …) are refused without having to be listed.
4. Every table is a contract table written ``layer.table`` in one of the role's layers, or one of
   ``information_schema.tables`` / ``.columns`` / ``.schemata``, which hold only what the role may
   read (`warehouse.catalog_sql`, where ``SHOW TABLES`` and ``DESCRIBE`` become queries on them).
5. The query is qualified against the contracts (``*``, ``t.*``, EXCLUDE, REPLACE expanded),
   and every column, in every scope (CTEs, subqueries, derived tables, UNION branches,
   lateral joins), is traced to its base table; ``COLUMNS(…)`` counts as every column of the
   scope's tables it can match, matched as DuckDB matches it (RE2, through DuckDB itself).
   Each must be at or below the role's clearance.

A query the guard cannot finish checking (nested too deeply, or text that is not valid UTF-8)
is refused like any other, and logged.

What runs is sqlglot's regeneration of the checked tree, not the submitted text, so DuckDB
executes exactly what was checked (comments dropped), on a read-only connection to the
role's published database with external access disabled and the configuration locked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import duckdb

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokens import TokenType

from schemas.model import Contract, load_contracts
from schemas.roles import Role, level, role_named, visible_columns
from warehouse.catalog_sql import (CATALOG_LAYER, catalog_contracts, did_you_mean, discovery, readable_columns,
                                   readable_tables, unknown_columns)

DIALECT = "duckdb"
# sqlglot's notice that it read a statement as a bare command would reach the analyst's terminal beside
# the guard's own answer (`SHOW DATABASES` is refused, `SHOW layer.table` described): dropped.
logging.getLogger("sqlglot").addFilter(lambda record: "Falling back to parsing as a 'Command'" not in record.getMessage())

# Functions that compute on the values they are given and nothing else. Names as sqlglot
# reports them (its canonical name for functions it knows, the written name otherwise).
ALLOWED_FUNCTIONS = frozenset("""
count count_if sum avg min max median mode first last any_value arg_max arg_min
stddev stddev_samp stddev_pop variance variance_pop corr covar_pop covar_samp
quantile quantile_cont quantile_disc approx_quantile percentile_cont percentile_disc
approx_distinct string_agg group_concat array_agg list histogram entropy kurtosis skewness
logical_and logical_or fsum sum_no_overflow product regr_slope regr_intercept
row_number rank dense_rank ntile lag lead first_value last_value nth_value percent_rank cume_dist
cast try_cast coalesce nullif if case greatest least ifnull nvl
abs round round_even floor ceil trunc sign sqrt power exp ln log log2 log10 mod even is_nan isfinite pi
upper lower length strlen substring trim ltrim rtrim concat concat_ws replace left right pad lpad rpad
str_position strpos contains starts_with ends_with regexp_like regexp_replace regexp_extract split_part
format printf reverse repeat
date_trunc timestamp_trunc date_part datepart extract datediff date_diff date_add date_sub date_bin
time_to_str str_to_time strftime strptime year month day hour minute second week week_of_year quarter
day_of_week dayofweek_iso dayname monthname last_day age now current_date current_timestamp
date_from_parts timestamp_from_parts make_date make_timestamp to_timestamp unix_to_time time_to_unix epoch
array exists row struct_extract array_size array_sort array_contains split
""".split())

# Statements named in a refusal when sqlglot cannot even parse them (e.g. EXPORT DATABASE).
QUERY_KEYWORDS = {"SELECT", "WITH", "FROM", "(", "VALUES"}
# DuckDB statements sqlglot reads as plain words.
DUCKDB_STATEMENTS = {"EXPORT", "IMPORT", "CHECKPOINT", "FORCE", "DETACH", "LOAD", "CALL", "RESET", "DEALLOCATE"}


@dataclass(frozen=True)
class GuardDecision:
    allowed: bool
    reason: str
    objects: tuple[str, ...] = ()      # layer.table and layer.table.column, sorted
    normalised: str | None = None      # the SQL that runs (None when refused before it was understood)
    # Why a refusal: "clearance" (a column above the role's), "layer" (a table outside its layers),
    # "operation" (a statement or function no role may run), or "invalid" (a query to fix).
    code: str | None = None
    refused: tuple[str, ...] = ()      # the columns or tables refused for clearance or layer


def _refuse(reason: str, objects=(), normalised=None, code: str = "invalid", refused=()) -> GuardDecision:
    return GuardDecision(False, reason, tuple(sorted(set(objects))), normalised, code, tuple(refused))


def contract_schema(contracts: dict[str, Contract]) -> dict:
    """``{layer: {table: {column: type}}}`` for sqlglot's qualifier."""
    schema: dict = {}
    for contract in contracts.values():
        schema.setdefault(contract.layer, {})[contract.table] = {c.name: c.physical_type for c in contract.columns}
    return schema


def _function_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return func.name.lower()
    return func.sql_name().lower()


def _first_keyword(sql: str) -> str:
    try:
        tokens = sqlglot.tokenize(sql, read=DIALECT)
    except SqlglotError:
        return ""
    return tokens[0].text.upper() if tokens else ""


def _is_statement_keyword(sql: str, keyword: str) -> bool:
    """Whether the first word is a statement (a refused operation) rather than a typo (a query to fix)."""
    if keyword in DUCKDB_STATEMENTS:
        return True
    try:
        first = sqlglot.tokenize(sql, read=DIALECT)[0]
    except (SqlglotError, IndexError):
        return False
    return first.token_type != TokenType.VAR


def _statement_name(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    return tree.key.upper()


def _parse(sql: str) -> exp.Expression | GuardDecision:
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as exc:
        keyword = _first_keyword(sql)
        if keyword and keyword not in QUERY_KEYWORDS:
            code = "operation" if _is_statement_keyword(sql, keyword) else "invalid"
            return _refuse(f"{keyword} statements are not allowed: only SELECT queries may be run.", code=code)
        detail = exc.errors[0]["description"] if exc.errors else str(exc)
        return _refuse(f"the query could not be parsed ({detail}); only plain DuckDB SELECT queries are accepted.")
    except SqlglotError as exc:
        return _refuse(f"the query could not be parsed ({exc}).")
    if len(statements) != 1:
        names = ", ".join(_statement_name(s) for s in statements) or "none"
        return _refuse(f"exactly one statement is allowed, found {len(statements)} ({names}); "
                       "remove the extra statements (a `;` or one hidden after a comment).")
    return statements[0]


def _check_shape(tree: exp.Expression) -> tuple[str, str] | None:
    """Why the statement is not a plain query, and the refusal's code; or None."""
    if not isinstance(tree, exp.Query):
        return f"{_statement_name(tree)} statements are not allowed: only SELECT queries may be run.", "operation"
    for node in tree.walk():
        if isinstance(node, (exp.DML, exp.DDL, exp.Command, exp.Pragma, exp.Set, exp.Attach, exp.Detach,
                             exp.Use, exp.Copy, exp.Install, exp.Describe, exp.Transaction, exp.Commit,
                             exp.Rollback, exp.Merge)):
            return f"{_statement_name(node)} is not allowed inside a query.", "operation"
        # AND / OR / XOR are operators that sqlglot models as functions.
        if isinstance(node, exp.Func) and not isinstance(node, (exp.Columns, exp.Connector)):
            name = _function_name(node)
            if name not in ALLOWED_FUNCTIONS:
                return (f"function {name}() is not allowed: only scalar, aggregate and window functions "
                        "that compute on column values may be used (no table, file, setting or catalog functions).",
                        "operation")
        if isinstance(node, exp.PositionalColumn):
            return f"positional column {node.sql(DIALECT)} is not allowed; name the column.", "invalid"
        if isinstance(node, exp.Star) and not isinstance(node.parent, (exp.Select, exp.Column, exp.Count, exp.Columns)):
            return f"`*` inside {node.parent.key.upper()} is not allowed; name the columns.", "invalid"
    return None


def _tables(tree: exp.Expression, contracts: dict[str, Contract], role: Role) -> tuple[list[str], str | None]:
    """The contract tables a query reads, or the reason one is refused."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            return found, f"`{table.sql(DIALECT)}` in FROM is not allowed: read contract tables only, as layer.table."
        if not table.db:
            if table.name.lower() in ctes:
                continue
            return found, (f"unknown table {table.name!r}: name tables as layer.table (e.g. core.fact_loan)."
                           f"{did_you_mean(table.name, readable_tables(role, contracts))} SHOW TABLES lists them.")
        if table.catalog:
            return found, f"table {table.sql(DIALECT)}: name tables as layer.table, without a database."
        name = f"{table.db}.{table.name}"
        contract = contracts.get(name)
        if contract is None:
            return found, (f"unknown table {name}: no contract declares it."
                           f"{did_you_mean(name, readable_tables(role, contracts))} SHOW TABLES lists the tables.")
        if contract.layer not in role.layers and contract.layer != CATALOG_LAYER:
            return found + [name], (f"table {name} is in layer {contract.layer}, which role {role.name} may not read "
                           f"(its layers: {', '.join(role.layers)}).")
        found.append(name)
    return found, None


def _source_table(scope: Scope, alias: str) -> exp.Table | Scope | None:
    """What ``alias`` names, looking outwards for correlated and lateral references."""
    while scope is not None:
        if alias in scope.sources:
            return scope.sources[alias]
        scope = scope.parent
    return None


def _columns_matched(node: exp.Columns, contract: Contract) -> list[str]:
    """Columns of ``contract`` a ``COLUMNS(...)`` may select: regex matches, or all of them."""
    arg = node.this
    if isinstance(arg, exp.Literal) and arg.is_string:
        matched = _re2_matches(arg.this, tuple(contract.column_names))
        return contract.column_names if matched is None else list(matched)
    return contract.column_names


@lru_cache(maxsize=512)
def _re2_matches(pattern: str, names: tuple[str, ...]) -> tuple[str, ...] | None:
    """The names DuckDB's ``COLUMNS(pattern)`` selects, matched by DuckDB's own RE2 (Python's ``re``
    reads ``[[:alpha:]]``, ``\\Z`` or ``(?i)`` differently); None when RE2 rejects the pattern."""
    con = duckdb.connect()
    try:
        return tuple(n for (n,) in con.execute("SELECT n FROM unnest(?::VARCHAR[]) AS t(n) WHERE regexp_matches(n, ?)",
                                               [list(names), pattern]).fetchall())
    except duckdb.Error:
        return None
    finally:
        con.close()


def _own(scope: Scope, node: exp.Expression) -> bool:
    """Whether ``node`` belongs to ``scope`` itself rather than to a scope nested in it."""
    return node.find_ancestor(exp.Select, exp.SetOperation) is scope.expression


def _touched_columns(qualified: exp.Expression, contracts: dict[str, Contract]) -> tuple[list[tuple[str, str]], str | None]:
    """(table, column) pairs read anywhere in the query, or why one cannot be resolved.

    Columns read through a derived table or CTE are caught in that inner scope, where they
    are read from their base table; here only base-table references count.
    """
    touched = []
    for scope in traverse_scope(qualified):
        for column in scope.columns:
            if not column.table:
                return touched, (f"column {column.name!r} could not be resolved to a table column; "
                                 "name columns as alias.column.")
            source = _source_table(scope, column.table)
            if source is None:
                return touched, f"column {column.table}.{column.name} could not be resolved to a table."
            if isinstance(source, exp.Table):
                name = f"{source.db}.{source.name}"
                if column.name not in contracts[name].column_names:
                    return touched, f"{name} has no column {column.name!r}."
                touched.append((name, column.name))
        # A table alias used as a value (`SELECT t FROM core.fact_loan t`) is the whole row.
        for node in scope.expression.find_all(exp.TableColumn):
            if not _own(scope, node):
                continue
            source = _source_table(scope, node.name)
            if source is None:
                return touched, f"{node.name!r} could not be resolved to a table."
            if isinstance(source, exp.Table):
                name = f"{source.db}.{source.name}"
                touched += [(name, c) for c in contracts[name].column_names]
        for node in scope.expression.find_all(exp.Columns):
            if not _own(scope, node):
                continue
            for source in scope.sources.values():
                if isinstance(source, exp.Table):
                    name = f"{source.db}.{source.name}"
                    touched += [(name, c) for c in _columns_matched(node, contracts[name])]
    for column in qualified.find_all(exp.Column):
        select = column.find_ancestor(exp.Select)
        if not column.table and (select is None or column.name not in select.named_selects):
            return touched, f"column {column.name!r} could not be resolved to a table column; name it as alias.column."
    return touched, None


def guard(sql: str, role: str | Role, user: str | None = None,
          contracts: dict[str, Contract] | None = None) -> GuardDecision:
    """Decide whether ``role`` may run ``sql``. Pure: logs nothing (``run_guarded`` logs)."""
    role = role if isinstance(role, Role) else role_named(role)
    contracts = {**(load_contracts() if contracts is None else contracts), **catalog_contracts()}
    unreadable = _not_text(sql)
    if unreadable:
        return _refuse(unreadable)
    try:
        return _guard(sql, role, contracts)
    except RecursionError:
        return _refuse("the query nests too deeply for the guard to check (parentheses, NOT, CASE or operators "
                       "thousands deep); write it flatter.")


def _not_text(sql: str) -> str | None:
    """Why ``sql`` is not plain text the guard and the log can hold, or None."""
    if "\x00" in sql:
        return f"the query holds a NUL character at position {sql.index(chr(0))}; send plain text."
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"the query is not valid UTF-8 text (position {exc.start}); send plain text."
    return None


def _guard(sql: str, role: Role, contracts: dict[str, Contract]) -> GuardDecision:
    tree = _parse(sql)
    if isinstance(tree, GuardDecision):
        return tree
    found = discovery(tree)
    if found is not None:
        tree = _discovered(found, role, contracts)
        if isinstance(tree, GuardDecision):
            return tree
    shape = _check_shape(tree)
    if shape:
        return _refuse(shape[0], code=shape[1])
    normalised = tree.sql(dialect=DIALECT, comments=False)
    tables, problem = _tables(tree, contracts, role)
    if problem:
        outside = [t for t in tables if contracts[t].layer not in role.layers]
        if outside:
            return _refuse(problem, tables, normalised, "layer", outside)
        code = "operation" if problem.endswith("read contract tables only, as layer.table.") else "invalid"
        return _refuse(problem, tables, normalised, code)
    try:
        qualified = qualify(tree.copy(), schema=contract_schema(contracts), dialect=DIALECT,
                            expand_stars=True, validate_qualify_columns=True, quote_identifiers=False)
    except (OptimizeError, SqlglotError) as exc:
        unknown = unknown_columns(tree, contracts, tables)
        if unknown:
            hint = did_you_mean(unknown[0], readable_columns(role, contracts, tables))
            return _refuse(f"column {unknown[0]!r} could not be resolved: no table of the query holds it.{hint} "
                           "DESCRIBE layer.table lists a table's columns.", tables, normalised)
        return _refuse(f"the query's columns could not all be resolved ({exc}); name each column as alias.column.",
                       tables, normalised)
    touched, problem = _touched_columns(qualified, contracts)
    objects = tables + [f"{t}.{c}" for t, c in touched]
    if problem:
        return _refuse(problem, objects, normalised)
    starred = (any(isinstance(s.parent, (exp.Select, exp.Column)) for s in tree.find_all(exp.Star))
               or any(qualified.find_all(exp.Columns, exp.TableColumn)))
    refusals, refused = [], []
    for table, column_name in dict.fromkeys(touched):
        column = contracts[table].column(column_name)
        if level(column.classification) > role.level:
            refused.append(f"{table}.{column_name}")
            refusals.append(f"column {table}.{column_name} is {column.classification}, above role "
                            f"{role.name}'s clearance ({role.clearance})")
    if refusals:
        more = f" (and {len(refusals) - 3} more)" if len(refusals) > 3 else ""
        how = "; `*`, COLUMNS(...) or a table alias selects them: name the columns, or use * EXCLUDE (...)" if starred else ""
        return _refuse("; ".join(refusals[:3]) + more + how + ".", objects, normalised, "clearance", refused)
    return GuardDecision(True, f"every table and column is within role {role.name}'s layers and clearance.",
                         tuple(sorted(set(objects))), _without_hidden_exclusions(tree, tables, contracts, role))


def _discovered(found, role: Role, contracts: dict[str, Contract]) -> exp.Expression | GuardDecision:
    """The query answering a SHOW or DESCRIBE (`warehouse.catalog_sql`), or its refusal: a DESCRIBE
    of a table is refused as a query on that table would be."""
    if found.refusal:
        return _refuse(found.refusal, code="operation")
    if found.layer is not None and found.layer not in role.layers:
        return _refuse(f"role {role.name} may not read layer {found.layer!r} (its layers: {', '.join(role.layers)})."
                       f"{did_you_mean(found.layer, list(role.layers))}", code="layer", refused=(found.layer,))
    if found.table is not None:
        described = sqlglot.parse_one(f"SELECT 1 FROM {found.table}", read=DIALECT)
        tables, problem = _tables(described, contracts, role)
        if problem:
            outside = [t for t in tables if contracts[t].layer not in role.layers]
            return _refuse(problem, tables, None, "layer" if outside else "invalid", outside)
        if contracts[tables[0]].layer != CATALOG_LAYER and not visible_columns(role, contracts[tables[0]]):
            return _refuse(f"role {role.name} may read no column of {tables[0]} (all above its clearance, "
                           f"{role.clearance}).", tables, None, "clearance", tables)
    return sqlglot.parse_one(found.sql, read=DIALECT)


def _without_hidden_exclusions(tree: exp.Expression, tables: list[str], contracts: dict[str, Contract],
                               role: Role) -> str:
    """The SQL to run, with ``* EXCLUDE (column)`` left out for columns the role's published database
    does not hold (DuckDB would fail on them; the guard already checked what the star selects)."""
    held = {c.name.lower() for t in tables for c in contracts[t].columns if level(c.classification) <= role.level}
    tree = tree.copy()
    for star in tree.find_all(exp.Star):
        excluded = star.args.get("except_") or []
        kept = [c for c in excluded if not isinstance(c, exp.Column) or c.name.lower() in held]
        if len(kept) != len(excluded):
            star.set("except_", kept or None)
    return tree.sql(dialect=DIALECT, comments=False)
