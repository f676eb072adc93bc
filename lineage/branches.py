"""Which UNION branches a guarded value can come from: branch pruning by literal discriminator.

A model that unions branches with a literal discriminator (`'loan' as kind`) and picks one per
column (`sum(case when kind = 'loan' then amount else 0 end)`) reads only the branches whose
discriminator can satisfy the CASE condition. A guard is that condition with every column
replaced by what it is made of, down through the CTEs, up to the UNION whose branches give the
discriminator; on entering a branch, the branch's own expression takes its place and the guard
is evaluated over the values it can take. Whatever cannot be decided keeps the branch.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

UNKNOWN = None


@dataclass(frozen=True)
class Guard:
    """A CASE condition over a path: ``value`` guards a THEN value (the branch is read only if the
    condition can hold there); otherwise it guards the condition's own columns (read only where the
    condition is not the same for every row of the branch)."""

    condition: exp.Expression
    value: bool


def union_leaves(scope: Scope) -> list[Scope]:
    """The select scopes of a UNION, however deeply nested."""
    if not scope.set_operation_scopes:
        return [scope]
    return [leaf for branch in scope.set_operation_scopes for leaf in union_leaves(branch)]


def _placeholder(union: Scope, position: int) -> exp.Expression:
    return exp.Var(this=f"__branch_{id(union.expression)}_{position}")


def reduce(expression: exp.Expression, scope: Scope, depth: int = 0) -> exp.Expression:
    """``expression`` (of ``scope``) with each column replaced by the expression that makes it,
    through CTEs and subqueries; a column of a UNION becomes a placeholder for its position,
    filled in when a path enters a branch. Aggregates and windows are left as columns (unknown)."""
    expression = expression.copy()
    if depth > 32:
        return expression
    for ref in list(expression.find_all(exp.Column)):
        source = scope.sources.get(ref.table)
        if not isinstance(source, Scope):
            continue
        if source.set_operation_scopes:
            names = union_leaves(source)[0].expression.named_selects
            if ref.name in names:
                replacement = _placeholder(source, names.index(ref.name))
                if ref is expression:
                    return replacement
                ref.replace(replacement)
            continue
        select = source.expression
        if not isinstance(select, exp.Select) or ref.name not in select.named_selects:
            continue
        made = select.selects[select.named_selects.index(ref.name)]
        made = made.this if isinstance(made, exp.Alias) else made
        if made.find(exp.AggFunc, exp.Window):
            continue
        replacement = reduce(made, source, depth + 1)
        if ref is expression:
            return replacement
        ref.replace(replacement)
    return expression


def enter_branch(condition: exp.Expression, branch: Scope, unions: list[Scope]) -> exp.Expression:
    """``condition`` with the placeholders of ``unions`` filled with ``branch``'s expressions."""
    condition = condition.copy()
    selects = branch.expression.selects
    for union in unions:
        prefix = f"__branch_{id(union.expression)}_"
        for var in list(condition.find_all(exp.Var)):
            if var.name.startswith(prefix):
                position = int(var.name[len(prefix):])
                made = selects[position] if position < len(selects) else None
                if made is None:
                    continue
                made = made.this if isinstance(made, exp.Alias) else made
                value = reduce(made, branch)
                if var is condition:
                    condition = value
                else:
                    var.replace(value)
    return condition


def pending(condition: exp.Expression) -> bool:
    """Whether placeholders are left to be filled by a branch further down."""
    return any(v.name.startswith("__branch_") for v in condition.find_all(exp.Var))


def _literal(value: exp.Expression):
    if isinstance(value, exp.Null):
        return None
    if isinstance(value, exp.Boolean):
        return bool(value.this)
    if value.is_string:
        return value.name
    try:
        return float(value.name)
    except ValueError:
        return UNKNOWN


def values(expression: exp.Expression) -> frozenset | None:
    """Every value ``expression`` can take (NULL as None), or None when that cannot be told."""
    if isinstance(expression, (exp.Paren, exp.Cast, exp.TryCast)):
        return values(expression.this)
    if isinstance(expression, (exp.Literal, exp.Null, exp.Boolean)):
        value = _literal(expression)
        return UNKNOWN if value is UNKNOWN and not isinstance(expression, exp.Null) else frozenset([value])
    if isinstance(expression, exp.Case) and expression.this is None:
        outcomes = [i.args.get("true") for i in expression.args.get("ifs") or []]
        outcomes.append(expression.args.get("default") or exp.Null())
        sets = [values(o) for o in outcomes]
        return UNKNOWN if any(s is UNKNOWN for s in sets) else frozenset().union(*sets)
    if isinstance(expression, (exp.EQ, exp.NEQ)):
        left, right = values(expression.this), values(expression.expression)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        equal = isinstance(expression, exp.EQ)
        return frozenset(None if a is None or b is None else (a == b) == equal for a in left for b in right)
    if isinstance(expression, exp.In) and not expression.args.get("query"):
        left = values(expression.this)
        options = [values(o) for o in expression.expressions]
        if left is UNKNOWN or any(o is UNKNOWN for o in options):
            return UNKNOWN
        allowed = frozenset().union(*options) if options else frozenset()
        return frozenset(None if a is None else a in allowed for a in left)
    if isinstance(expression, exp.Not):
        inner = values(expression.this)
        return UNKNOWN if inner is UNKNOWN else frozenset(None if v is None else not v for v in inner)
    if isinstance(expression, (exp.And, exp.Or)):
        left, right = values(expression.this), values(expression.expression)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        combine = (lambda a, b: a and b) if isinstance(expression, exp.And) else (lambda a, b: a or b)
        return frozenset(bool(combine(bool(a), bool(b))) for a in left for b in right)
    return UNKNOWN


def keeps(guard: Guard, condition: exp.Expression) -> bool:
    """Whether a path under ``guard`` (its condition as filled in for a branch) stays."""
    outcomes = values(condition)
    if outcomes is UNKNOWN:
        return True
    taken = {bool(v) for v in outcomes}      # a NULL condition is not taken
    return True in taken if guard.value else len(taken) > 1


def guards_of(expression: exp.Expression, table: str, column: str, scope: Scope) -> list[Guard] | None:
    """The guards of every use of ``table.column`` in one select expression, reduced in ``scope``;
    None when some use is unguarded (then nothing is pruned)."""
    value = expression.this if isinstance(expression, exp.Alias) else expression
    found: list[Guard] = []
    for ref in value.find_all(exp.Column):
        if ref.name != column or (table and ref.table and ref.table != table):
            continue
        guard = _guard(ref, value)
        if guard is None:
            return None
        found.append(Guard(reduce(guard.condition, scope), guard.value))
    return found or None


def _guard(ref: exp.Column, top: exp.Expression) -> Guard | None:
    """The innermost CASE condition deciding whether ``ref`` counts: as a THEN value or as a
    condition of a searched CASE; None for a use in an ELSE or outside any CASE."""
    child, parent = ref, ref.parent
    while parent is not None and child is not top:
        if isinstance(parent, exp.If) and isinstance(parent.parent, exp.Case) and parent.parent.this is None:
            if child.arg_key == "true":
                return Guard(parent.this, True)
            if child.arg_key == "this":
                return Guard(parent.this, False)
        child, parent = parent, parent.parent
    return None
