"""Which rows decide a value: the base columns a column of a scope reads, and the columns that
decide which rows a select has (its filters, groupings and join keys, and those of the scopes
it reads rows from), for the column lineage of lineage.columns."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from lineage.branches import union_leaves

JOIN, FILTER, GROUP_BY = "JOIN", "FILTER", "GROUP_BY"


def resolve(scope: Scope, ref: exp.Column, seen: set | None = None, branches: set[int] | None = None) -> set[tuple[str, str]]:
    """The base `layer.table` columns a column reference of ``scope`` reads; through a UNION, only
    its ``branches`` (selects, by id) when some of them are among its branches."""
    seen = set() if seen is None else seen
    source = scope.sources.get(ref.table)
    if isinstance(source, exp.Table):
        return {(f"{source.db}.{source.name}", ref.name)}
    if not isinstance(source, Scope) or (id(source), ref.name) in seen:
        return set()
    seen.add((id(source), ref.name))
    names = source.expression.named_selects   # of the first branch, for a UNION
    return output_reads(source, names.index(ref.name), seen, branches) if ref.name in names else set()


def output_reads(scope: Scope, position: int, seen: set, branches: set[int] | None = None) -> set[tuple[str, str]]:
    """The base columns the ``position``-th output of a select reads; of every branch, for a UNION
    (whose branches line up by position, not by name)."""
    if scope.set_operation_scopes:
        read = [b for b in scope.set_operation_scopes
                if branches and any(id(leaf.expression) in branches for leaf in union_leaves(b))]
        return set().union(*(output_reads(b, position, seen, branches) for b in read or scope.set_operation_scopes))
    selects = scope.expression.selects
    if position >= len(selects):
        return set()
    found: set[tuple[str, str]] = set()
    refs = list(selects[position].find_all(exp.Column))
    if selects[position].find(exp.AggFunc, exp.Window):
        # A value summarised over rows, or ranked among them, depends on which rows the select has.
        decided: dict[tuple[str, str], str] = {}
        read = set(branches or ())
        for ref in refs:     # the sources the value itself reads (a left-joined one too)
            source = scope.sources.get(ref.table)
            read |= {id(x.expression) for x in union_leaves(source)} if isinstance(source, Scope) else {id(source)}
        rows_of(scope, read, decided, set())
        found |= set(decided)
    for inner in refs:
        found |= resolve(scope, inner, seen, branches)
    return found


def aggregate_kind(expression: exp.Expression) -> type | None:
    """SUM, MIN or MAX when the expression is one of them (over any value), else None."""
    value = expression.this if isinstance(expression, exp.Alias) else expression
    while isinstance(value, (exp.Cast, exp.Paren)):
        value = value.this
    return type(value) if isinstance(value, (exp.Sum, exp.Min, exp.Max)) else None


def rows_of(scope: Scope, branches: set[int], found: dict[tuple[str, str], str], seen: set[int],
             top: bool = True, regrouped: set[int] = frozenset()) -> None:
    """Into ``found``, the columns that decide which rows ``scope`` has: its WHERE, HAVING,
    QUALIFY, GROUP BY (and a DISTINCT below the top) and join keys, and those of the scopes it
    reads rows from (of a UNION, only its ``branches`` when it has some). A LEFT JOIN of a source
    the path does not read adds columns, not rows (a left join that repeats rows is taken not to
    be one), so it is left out."""
    if id(scope) in seen:
        return
    seen.add(id(scope))
    if scope.set_operation_scopes:
        leaves = union_leaves(scope)
        for leaf in [x for x in leaves if id(x.expression) in branches] or leaves:
            rows_of(leaf, branches, found, seen, top=False, regrouped=regrouped)
        return
    select = scope.expression
    if not isinstance(select, exp.Select):
        return
    parts = [(select.args.get("where"), FILTER), (select.args.get("having"), FILTER),
             (select.args.get("qualify"), FILTER)]
    if top or id(select) not in regrouped:
        parts.append((select.args.get("group"), GROUP_BY))
    if not top and select.args.get("distinct"):
        parts += [(projection, GROUP_BY) for projection in select.selects]
    skipped = set()
    for join in select.args.get("joins") or ():
        name = join.this.alias_or_name
        source = scope.sources.get(name)
        read = isinstance(source, Scope) and any(id(x.expression) in branches for x in union_leaves(source))
        if join.side == "LEFT" and not read and not (isinstance(source, exp.Table) and id(source) in branches):
            skipped.add(name)
            continue
        parts.append((join.args.get("on"), JOIN))
    for part, subtype in parts:
        for ref in part.find_all(exp.Column) if part is not None else ():
            for key in resolve(scope, ref, branches=branches):
                found.setdefault(key, subtype)
    for name, (_, source) in scope.selected_sources.items():
        if name not in skipped and isinstance(source, Scope):
            rows_of(source, branches, found, seen, top=False, regrouped=regrouped)


def keyed_by(scope: Scope, ref: exp.Column, depth: int = 0) -> bool:
    """Whether ``ref`` reads a grouping key of its source (one row per value of its keys): as a
    join key it says which row a value lands in, the row's identity, not which value it is."""
    source = scope.sources.get(ref.table)
    select = source.expression if isinstance(source, Scope) else None
    if not isinstance(select, exp.Select) or ref.name not in select.named_selects:
        return False
    projection = select.selects[select.named_selects.index(ref.name)]
    value = projection.this if isinstance(projection, exp.Alias) else projection
    group = select.args.get("group")
    if group is not None:
        return value.sql() in {e.sql() for e in group.find_all(exp.Column)} | {e.sql() for e in group.expressions}
    # a key copied as is from a grouped source below
    return isinstance(value, exp.Column) and depth < 16 and keyed_by(source, value, depth + 1)