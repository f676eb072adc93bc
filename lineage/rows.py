"""Which rows decide a value: the base columns a column of a scope reads, and the columns that
decide which rows a select has (its filters, groupings and join keys, and those of the scopes
it reads rows from), for the column lineage of lineage.columns."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from lineage.branches import union_leaves
from schemas.model import load_contracts

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


def _grouped_outputs(scope: Scope) -> dict[int, frozenset[str]]:
    """For each source of a grouping select, the output columns that every alias of it is grouped by."""
    group = scope.expression.args.get("group") if isinstance(scope.expression, exp.Select) else None
    if group is None:
        return {}
    keys = {(c.table, c.name) for c in group.expressions if isinstance(c, exp.Column)}
    by_source: dict[int, list[frozenset[str]]] = {}
    for alias, (_, source) in scope.selected_sources.items():
        if isinstance(source, Scope):
            by_source.setdefault(id(source), []).append(frozenset(n for t, n in keys if t == alias))
    return {source: frozenset.intersection(*outputs) for source, outputs in by_source.items()}


def _unique_on(source: Scope | exp.Table | None, names: list[str], depth: int = 0) -> bool:
    """Whether ``source`` has at most one row per value of its columns ``names``: a table whose
    contract's primary key they are, a select grouped by them, or a select of one source copying
    them from columns of its own that are unique."""
    if isinstance(source, exp.Table):
        contract = load_contracts().get(f"{source.db}.{source.name}")
        return contract is not None and bool(contract.primary_key) and set(contract.primary_key) <= set(names)
    if not isinstance(source, Scope) or not isinstance(source.expression, exp.Select) or depth > 16:
        return False
    select = source.expression
    picked = [select.selects[select.named_selects.index(n)] for n in names if n in select.named_selects]
    values = [p.this if isinstance(p, exp.Alias) else p for p in picked]
    if len(values) != len(names) or not all(isinstance(v, exp.Column) for v in values):
        return False
    group = select.args.get("group")
    if group is not None:
        return {e.sql() for e in group.expressions} <= {v.sql() for v in values}
    if select.args.get("joins") or len({v.table for v in values}) != 1:
        return False
    return _unique_on(source.sources.get(values[0].table), [v.name for v in values], depth + 1)


def _decides_whole_groups(scope: Scope, join: exp.Join, grouped: frozenset[str]) -> bool:
    """Whether an inner join of ``scope`` keeps or drops whole groups of the select above: it
    matches, one to one, columns that ``scope`` hands on unchanged as outputs that select groups
    by. Which groups there are is then its doing (a dataset edge), not what a group sums."""
    on, joined = join.args.get("on"), join.this.alias_or_name
    if not grouped or join.side or on is None:
        return False
    equalities = list(on.flatten()) if isinstance(on, exp.And) else [on]
    copied = {(v.table, v.name): p.alias_or_name for p in scope.expression.selects
              for v in [p.this if isinstance(p, exp.Alias) else p] if isinstance(v, exp.Column)}
    keys = []
    for equality in equalities:
        if not isinstance(equality, exp.EQ) or not all(isinstance(x, exp.Column) for x in (equality.left, equality.right)):
            return False
        sides = sorted((equality.left, equality.right), key=lambda c: c.table != joined)
        if sides[0].table != joined or sides[1].table == joined or copied.get((sides[1].table, sides[1].name)) not in grouped:
            return False
        keys.append(sides[0].name)
    return _unique_on(scope.sources.get(joined), keys)


def rows_of(scope: Scope, branches: set[int], found: dict[tuple[str, str], str], seen: set[int],
             top: bool = True, regrouped: set[int] = frozenset(), grouped: frozenset[str] = frozenset(),
             per_group: bool = False) -> None:
    """Into ``found``, the columns that decide which rows ``scope`` has: its WHERE, HAVING,
    QUALIFY, GROUP BY (and a DISTINCT below the top) and join keys, and those of the scopes it
    reads rows from (of a UNION, only its ``branches`` when it has some). A LEFT JOIN of a source
    the path does not read adds columns, not rows (a left join that repeats rows is taken not to
    be one), so it is left out. For a value of one group (``per_group``: an aggregate, not a window
    that ranks groups against each other), so is an inner join below that keeps or drops whole
    groups (``grouped``: the outputs of a source that the aggregating select groups by)."""
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
        if _decides_whole_groups(scope, join, grouped):
            skipped.add(name)
            continue
        parts.append((join.args.get("on"), JOIN))
    for part, subtype in parts:
        for ref in part.find_all(exp.Column) if part is not None else ():
            for key in resolve(scope, ref, branches=branches):
                found.setdefault(key, subtype)
    below = _grouped_outputs(scope) if top and per_group else {}
    for name, (_, source) in scope.selected_sources.items():
        if name not in skipped and isinstance(source, Scope):
            rows_of(source, branches, found, seen, top=False, regrouped=regrouped,
                    grouped=below.get(id(source), frozenset()))


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
