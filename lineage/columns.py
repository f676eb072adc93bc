"""Column lineage: from sqlglot for the SQL models, from declared mappings for the parsers.

A model is qualified against the contracts' schema, then ``sqlglot.lineage`` walks each
output column down to the `layer.table` columns it reads. How a value travels (a bare
copy, an expression, an aggregate, only a window key, a CASE condition picking between
columns) names the transformation. A value picked by a CASE on a UNION's literal
discriminator reads only the branches that can satisfy it (lineage.branches). A column's
own INDIRECT inputs are what decides its value in a row: for an aggregate, the filters,
groupings and join keys of the rows it summarises; for a value taken from a joined table,
the join keys (lineage.rows). Which rows the table has at all (joins, filters, GROUP BY,
window keys) are its dataset-level INDIRECT inputs. What `shuku trace` prints for a column
is its own edges; tests/test_lineage_perturbation.py holds them against perturbations.
Results are cached per SQL text, so a process parses each model once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope, traverse_scope

from lineage.branches import Guard, enter_branch, guards_of, keeps, pending, union_leaves
from lineage.rows import FILTER, GROUP_BY, JOIN, aggregate_kind, keyed_by, resolve, rows_of
from schemas.model import load_contracts

DIALECT = "duckdb"
DIRECT, INDIRECT = "DIRECT", "INDIRECT"
IDENTITY, TRANSFORMATION, AGGREGATION = "IDENTITY", "TRANSFORMATION", "AGGREGATION"
WINDOW, CONDITIONAL = "WINDOW", "CONDITIONAL"
# A hash of identifying values hides them: the result is a pseudonymous key.
MASKING_FUNCTIONS = (exp.SHA2, exp.SHA, exp.MD5)
# Window functions that fetch one neighbouring value rather than summarise many.
OFFSET_FUNCTIONS = (exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue)


@dataclass(frozen=True)
class Edge:
    """One input column of an output column (``output_column`` None: of the whole table)."""

    output_column: str | None
    input_table: str          # "layer.table", or a landing feed's source for declared mappings
    input_column: str
    type: str
    subtype: str
    description: str = ""
    masking: bool = False


@dataclass(frozen=True)
class ModelLineage:
    """The column lineage of one SQL model."""

    fields: dict[str, tuple[Edge, ...]]      # output column -> its inputs
    dataset: tuple[Edge, ...]                # inputs that shape every row (joins, filters, keys)
    expressions: dict[str, tuple[str, ...]]  # output column -> the expressions that made it, outermost first

    def edges(self) -> list[Edge]:
        return [e for edges in self.fields.values() for e in edges] + list(self.dataset)


@lru_cache(maxsize=1)
def warehouse_schema() -> dict[str, dict[str, dict[str, str]]]:
    """{layer: {table: {column: DuckDB type}}} from the contracts, for sqlglot."""
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for contract in load_contracts().values():
        schema.setdefault(contract.layer, {})[contract.table] = {c.name: c.physical_type for c in contract.columns}
    return schema


def _unquote(name: str) -> str:
    return name.strip('"')


def _step_role(expression: exp.Expression, table: str, column: str) -> str:
    """How ``table.column`` is used in one select expression: IDENTITY, TRANSFORMATION, AGGREGATION or WINDOW."""
    value = expression.this if isinstance(expression, exp.Alias) else expression
    roles = set()
    for ref in value.find_all(exp.Column):
        if ref.name != column or (table and ref.table and ref.table != table):
            continue
        if ref is value:
            roles.add(IDENTITY)
            continue
        role, child, parent = TRANSFORMATION, ref, ref.parent
        while parent is not None:
            if isinstance(parent, exp.Window) and child.arg_key in ("partition_by", "order"):
                role = WINDOW
                break
            if _picks(parent, child):
                role = CONDITIONAL
                break
            if isinstance(parent, exp.AggFunc) and not isinstance(parent, OFFSET_FUNCTIONS):
                role = AGGREGATION
            if parent is value:
                break
            child, parent = parent, parent.parent
        roles.add(role)
    # A column used as a value and as a window key or a condition is a value.
    for role in (AGGREGATION, TRANSFORMATION, IDENTITY, CONDITIONAL, WINDOW):
        if role in roles:
            return role
    return TRANSFORMATION


def _picks(parent: exp.Expression, child: exp.Expression) -> bool:
    """Whether ``child`` is the condition of a CASE that picks between values read from columns
    (a condition mapped to literals, ``case when x then 'a' else 'b' end``, is a transformation)."""
    if not (isinstance(parent, exp.If) and child.arg_key == "this" and isinstance(parent.parent, exp.Case)):
        return False
    case = parent.parent
    outcomes = [i.args.get("true") for i in case.args.get("ifs") or []] + [case.args.get("default")]
    return any(o is not None and o.find(exp.Column) for o in outcomes)


def _masks(expression: exp.Expression) -> bool:
    return any(True for _ in expression.find_all(*MASKING_FUNCTIONS))


@dataclass
class _Model:
    """The qualified model's scopes: by select, and the UNIONs each select is a branch of."""

    scopes: dict[int, Scope]
    unions: dict[int, list[Scope]]

    @classmethod
    def of(cls, tree: exp.Expression) -> "_Model":
        scopes = {id(scope.expression): scope for scope in traverse_scope(tree)}
        unions: dict[int, list[Scope]] = {}
        for scope in scopes.values():
            if scope.set_operation_scopes:
                for leaf in union_leaves(scope):
                    unions.setdefault(id(leaf.expression), []).append(scope)
        return cls(scopes, unions)


def _walk(model: _Model, node: Node, path: list[Node], out: list[list[Node]], constants: list[list[Node]],
          guards: tuple[tuple[Guard, ...], ...] = ()) -> None:
    """Root-to-table paths into ``out``; paths ending at a value that reads no column into ``constants``.

    ``guards``: the CASE conditions the path is under (each a choice of alternatives, one of which
    must keep it); a branch of a UNION whose discriminator cannot satisfy them is not read.
    """
    if isinstance(node.expression, exp.Table):
        out.append(path + [node])
        return
    if not node.downstream:
        constants.append(path + [node])
    scope = model.scopes.get(id(node.source))
    for child in node.downstream:
        below = guards
        if scope is not None:
            table, column = _child_ref(model, node, child)
            found = guards_of(node.expression, table, column, scope) if column else None
            below = guards + ((tuple(found),) if found else ())
        kept = _enter(model, child, below)
        if kept is not None:
            _walk(model, child, path + [node], out, constants, kept)


def _child_ref(model: _Model, node: Node, child: Node) -> tuple[str, str]:
    """(table alias, column) by which ``node``'s expression reads ``child``: a UNION's branches
    are named by position, which the first branch's select names."""
    table, _, column = child.name.rpartition(".")
    table, column = _unquote(table), _unquote(column)
    scope = model.scopes.get(id(node.source))
    if table or not column.isdigit() or scope is None:
        return table, column
    for union in model.unions.get(id(child.source), ()):
        alias = next((name for name, source in scope.sources.items() if source is union), None)
        names = union_leaves(union)[0].expression.named_selects
        if alias is not None and int(column) < len(names):
            return alias, names[int(column)]
    return table, column


def _enter(model: _Model, child: Node, guards: tuple[tuple[Guard, ...], ...]) -> tuple | None:
    """The guards left on entering ``child`` (filled in when it is a UNION branch), or None when
    no alternative of some guard can hold in that branch."""
    unions = model.unions.get(id(child.source))
    branch = model.scopes.get(id(child.source))
    if not unions or branch is None:
        return guards
    left = []
    for alternatives in guards:
        still, holds = [], False
        for guard in alternatives:
            condition = enter_branch(guard.condition, branch, unions)
            if pending(condition):
                still.append(Guard(condition, guard.value))
            elif keeps(guard, condition):
                holds = True
        if holds:
            continue
        if not still:
            return None
        left.append(tuple(still))
    return tuple(left)


def _classify(model: _Model, path: list[Node]) -> tuple[str, str, bool]:
    """(type, subtype, masking) of one root-to-source path of lineage nodes."""
    roles, masking = [], False
    for parent, child in zip(path, path[1:]):
        roles.append(_step_role(parent.expression, *_child_ref(model, parent, child)))
        masking |= _masks(parent.expression)
    if WINDOW in roles:
        return INDIRECT, WINDOW, masking
    if CONDITIONAL in roles:
        return INDIRECT, CONDITIONAL, masking
    for role in (AGGREGATION, TRANSFORMATION):
        if role in roles:
            return DIRECT, role, masking
    return DIRECT, IDENTITY, masking


def _expressions(path: list[Node]) -> list[str]:
    """The non-trivial expressions along a path (a bare copy says nothing)."""
    shown = []
    for node in path:
        value = node.expression.this if isinstance(node.expression, exp.Alias) else node.expression
        if isinstance(value, (exp.Column, exp.Table)):
            continue
        shown.append(value.sql(dialect=DIALECT))
    return shown


def _constant_value(path: list[Node]) -> exp.Expression:
    """The value a path that reads no column ends at, without its alias and casts."""
    value = path[-1].expression.this if isinstance(path[-1].expression, exp.Alias) else path[-1].expression
    while isinstance(value, exp.Cast):
        value = value.this
    return value


def _constant_edges(column: str, path: list[Node], scopes: dict[int, Scope], branches_differ: bool) -> list[Edge]:
    """What decides a literal written by one branch of a UNION whose branches give different
    values: the columns of the branch's WHERE. A NULL placeholder, or a literal that is the same
    whatever the row (a parameter such as a threshold), has none: it is a value of the model's
    SQL. (An aggregate such as COUNT(*) is decided by its rows: ``_row_edges``; a CASE by its
    conditions, columns of the expression itself.)
    """
    leaf = path[-1]
    select, scope = leaf.source, scopes.get(id(leaf.source))
    value = _constant_value(path)
    shown = (leaf.expression.this if isinstance(leaf.expression, exp.Alias) else leaf.expression).sql(dialect=DIALECT)
    if scope is None or not isinstance(select, exp.Select) or isinstance(value, exp.Null):
        return []
    if value.find(exp.AggFunc):
        return []
    if branches_differ and isinstance(select.parent, exp.SetOperation):
        parts = [(select.args.get("where"), CONDITIONAL)]
        description = f"decides {shown} (the condition of its UNION branch)"
    else:
        return []
    found: dict[tuple[str, str], str] = {}
    for part, subtype in parts:
        for ref in part.find_all(exp.Column) if part is not None else ():
            for key in resolve(scope, ref):
                found.setdefault(key, subtype)
    return [Edge(column, table, input_column, INDIRECT, subtype, description)
            for (table, input_column), subtype in sorted(found.items())]


def _row_edges(model: _Model, column: str, path: list[Node]) -> list[Edge]:
    """What decides which rows an aggregate on ``path`` summarises: the GROUP BY, WHERE, HAVING
    and join keys of the select that aggregates and of every select below it on the path (only
    the UNION branches the path reads)."""
    start = None
    for i, (parent, child) in enumerate(zip(path, path[1:])):
        if _step_role(parent.expression, *_child_ref(model, parent, child)) == AGGREGATION:
            start = i
            break
    if start is None:
        value = path[-1].expression
        if not (value.this if isinstance(value, exp.Alias) else value).find(exp.AggFunc):
            return []
        start = len(path) - 1
    aggregate = path[start].expression
    shown = (aggregate.this if isinstance(aggregate, exp.Alias) else aggregate).sql(dialect=DIALECT)
    branches = {id(node.source) for node in path}
    found: dict[tuple[str, str], str] = {}
    scope = model.scopes.get(id(path[start].source))
    if scope is not None:
        # A sum of sums (a min of mins, a max of maxes) is the same however the rows below were
        # grouped: those groupings decide nothing of it.
        top = aggregate_kind(aggregate)
        regrouped = {id(node.source) for node in path[start + 1:]
                     if top is not None and aggregate_kind(node.expression) is top}
        # One group's value, unless a window above ranks or sums groups against each other.
        per_group = not any(node.expression.find(exp.Window) for node in path[:start + 1])
        rows_of(scope, branches, found, set(), regrouped=regrouped, per_group=per_group)
    return [Edge(column, table, input_column, INDIRECT, subtype, f"decides the rows {shown} summarises")
            for (table, input_column), subtype in sorted(found.items())]


def _join_edges(model: _Model, column: str, path: list[Node]) -> list[Edge]:
    """The join keys that decide which row of a joined table a value on ``path`` is taken from."""
    branches = {id(node.source) for node in path}
    found: dict[tuple[str, str], Edge] = {}
    for parent, child in zip(path, path[1:]):
        select, scope = parent.source, model.scopes.get(id(parent.source))
        if scope is None or not isinstance(select, exp.Select):
            continue
        table, _ = _child_ref(model, parent, child)
        for join in select.args.get("joins") or ():
            if join.this.alias_or_name != table or join.args.get("on") is None:
                continue
            refs = list(join.args["on"].find_all(exp.Column))
            for ref in [r for r in refs if r.table == table or not keyed_by(scope, r)]:
                for key in resolve(scope, ref, branches=branches):
                    found.setdefault(key, Edge(column, key[0], key[1], INDIRECT, JOIN,
                                               f"decides which {table} row gives the value"))
    return list(found.values())


def _dataset_edges(tree: exp.Expression) -> list[Edge]:
    """Columns that decide which rows exist or how they group: joins, filters, GROUP BY, window keys."""
    found: dict[tuple[str, str], set[str]] = {}

    def add(scope: Scope, part: exp.Expression | list | None, subtype: str) -> None:
        for piece in part if isinstance(part, list) else [part] if part is not None else []:
            for ref in piece.find_all(exp.Column):
                for key in resolve(scope, ref):
                    found.setdefault(key, set()).add(subtype)

    for scope in traverse_scope(tree):
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        for join in select.args.get("joins") or ():
            add(scope, join.args.get("on"), JOIN)
        add(scope, select.args.get("where"), FILTER)
        add(scope, select.args.get("having"), FILTER)
        add(scope, select.args.get("qualify"), FILTER)
        add(scope, select.args.get("group"), GROUP_BY)
        for projection in select.expressions:
            for window in projection.find_all(exp.Window):
                add(scope, window.args.get("partition_by"), WINDOW)
                add(scope, window.args.get("order"), WINDOW)
    descriptions = {JOIN: "join key", FILTER: "filter condition", GROUP_BY: "grouping key", WINDOW: "window partition or order"}
    return [Edge(None, table, column, INDIRECT, subtype, descriptions[subtype])
            for (table, column), subtypes in sorted(found.items()) for subtype in sorted(subtypes)]


@lru_cache(maxsize=64)
def sql_lineage(sql: str) -> ModelLineage:
    """Column lineage of one model's SQL (cached per text, so once per model per process)."""
    schema = warehouse_schema()
    tree = qualify(sqlglot.parse_one(sql, dialect=DIALECT), schema=schema, dialect=DIALECT)
    # Qualified once here; handing lineage the scope keeps it from qualifying again.
    roots = lineage(None, tree, schema=schema, dialect=DIALECT, scope=build_scope(tree), trim_selects=False, copy=False)
    model = _Model.of(tree)
    scopes = model.scopes
    fields: dict[str, tuple[Edge, ...]] = {}
    expressions: dict[str, tuple[str, ...]] = {}
    for column, root in roots.items():
        paths: list[list[Node]] = []
        constants: list[list[Node]] = []
        _walk(model, root, [], paths, constants)
        edges: dict[tuple, Edge] = {}
        shown: list[str] = []
        for path in paths:
            leaf = path[-1]
            table = f"{leaf.expression.db}.{leaf.expression.name}"
            kind, subtype, masking = _classify(model, path)
            edge = Edge(column, table, _unquote(leaf.name.rpartition(".")[2]), kind, subtype,
                        " → ".join(reversed(_expressions(path[:-1]))) or "copied as is", masking)
            edges.setdefault((table, edge.input_column, kind, subtype), edge)
            shown += _expressions(path[:-1])
        literals = {_constant_value(path).sql(dialect=DIALECT) for path in constants
                    if not isinstance(_constant_value(path), exp.Null)}
        branches_differ = len(literals) > 1 or bool(paths)
        for path in paths + constants:
            for edge in _row_edges(model, column, path) + _join_edges(model, column, path):
                edges.setdefault((edge.input_table, edge.input_column, edge.type, edge.subtype), edge)
        for path in constants:
            for edge in _constant_edges(column, path, scopes, branches_differ):
                edges.setdefault((edge.input_table, edge.input_column, edge.type, edge.subtype), edge)
            shown += _expressions(path)
        fields[column] = tuple(edges.values())
        expressions[column] = tuple(dict.fromkeys(shown))
    return ModelLineage(fields=fields, dataset=tuple(_dataset_edges(tree)), expressions=expressions)
