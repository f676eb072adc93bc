"""SQL literals for config-driven marts: the config's values written into the query."""

from warehouse.lake.views import sql_string


def text_literal(value: str) -> str:
    """A quoted SQL string."""
    return sql_string(value)


def number_literal(value: float) -> str:
    """A SQL double literal."""
    return repr(float(value))


def values_cte(name: str, columns: list[tuple[str, str]], rows: list[tuple[str, ...]]) -> str:
    """A CTE of literal rows, typed even when there are none."""
    if not rows:
        typed = ", ".join(f"cast(null as {t}) as {c}" for c, t in columns)
        return f"{name} as (\n    select {typed} where false\n)"
    body = ",\n        ".join("(" + ", ".join(row) + ")" for row in rows)
    casts = ", ".join(f"cast({c} as {t}) as {c}" for c, t in columns)
    names = ", ".join(c for c, _ in columns)
    return f"{name} as (\n    select {casts} from (values\n        {body}\n    ) as v({names})\n)"
