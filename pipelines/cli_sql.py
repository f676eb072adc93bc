"""`shuku sql` and `shuku shell`: questions to the warehouse, as a role through the SQL guard or in the
full view. Kept light: nothing of Dagster is imported on this path, so a query answers in a fraction
of a second (benchmarks/bench_sql.py measures it)."""

from __future__ import annotations

import decimal
import json
import math
import sys

import click

from pipelines.cli_shared import Failed, err, existing_settings, out

FORMATS = ("table", "csv", "json")


def shown(value) -> str:
    """A value as the table shows it: fractions rounded for reading (2 decimals, thousands
    separated; 4 significant digits below 1), everything else as it is. CSV and JSON keep full precision."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (float, decimal.Decimal)):
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        return str(value)
    if number == 0 or abs(number) >= 1:
        return f"{number:,.2f}"
    return f"{number:.4g}"


def print_result(names: list[str], rows: list[tuple], fmt: str) -> None:
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(dict(zip(names, row)), default=str, ensure_ascii=False))
    elif fmt == "csv":
        import csv
        writer = csv.writer(sys.stdout)
        writer.writerow(names)
        writer.writerows(rows)
    else:
        from rich.table import Table

        table = Table()
        for i, name in enumerate(names):
            numeric = rows and all(isinstance(r[i], (int, float, decimal.Decimal)) and not isinstance(r[i], bool)
                                   for r in rows if r[i] is not None) and any(r[i] is not None for r in rows)
            table.add_column(name, justify="right" if numeric else "left")
        for row in rows:
            table.add_row(*(shown(v) for v in row))
        out.print(table)
        err.print(f"{len(rows)} row(s)")


def answer(query: str, role: str | None) -> tuple[list[str], list[tuple]]:
    """Run ``query`` as ``role`` through the guard, or in the full view without a role."""
    from pipelines.cli_shared import full_view_sql

    return guarded_sql(query, role) if role is not None else full_view_sql(existing_settings(), query)


def guarded_sql(query: str, role: str) -> tuple[list[str], list[tuple]]:
    """Run ``query`` through the SQL guard as ``role``; a refusal exits 1 with its reason."""
    from schemas.roles import UnknownRole
    from warehouse.grants import AccessConfigError
    from warehouse.guarded import QueryFailed, QueryRefused, run_guarded

    try:
        result = run_guarded(existing_settings(), query, role)
    except (UnknownRole, AccessConfigError) as exc:
        raise click.UsageError(str(exc)) from None
    except QueryRefused as exc:
        raise Failed(f"refused for role {role}: {exc.decision.reason}") from None
    except QueryFailed as exc:
        raise Failed(str(exc)) from None
    return result.columns, result.rows


ROLE_HELP = ("Run as this role (schemas/roles.yaml) through the SQL guard, on its published database; without it, "
             "the full view, for accounts granted full_view in access.yaml.")


@click.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--role", default=None, help=ROLE_HELP)
def sql(query: str, fmt: str, role: str | None) -> None:
    """Query the warehouse (every layer, as views over the lake), or as a role through the guard.

    SHOW TABLES, SHOW ALL TABLES, DESCRIBE layer.table and information_schema.tables / .columns
    list what the role may read. Table output rounds numbers for reading; csv and json keep them whole."""
    print_result(*answer(query, role), fmt)


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--role", default=None, help=ROLE_HELP)
def shell(fmt: str, role: str | None) -> None:
    """Ask one query after another in one session (one per line; a line ending in `\\` goes on).

    Every query is guarded and logged like `shuku sql`; an empty line, `.quit` or Ctrl-D ends."""
    interactive = sys.stdin.isatty()
    if interactive:
        err.print(f"shuku shell as {role or 'the full view'}: SHOW TABLES lists the tables, DESCRIBE layer.table "
                  "their columns; .quit to end.")
    pending, failed = "", 0
    while True:
        try:
            line = input("shuku> " if interactive and not pending else ("   ..> " if interactive else ""))
        except EOFError:
            break
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + "\n"
            continue
        query = (pending + line).strip().rstrip(";")
        pending = ""
        if query in ("", ".quit", ".exit"):
            if query or interactive:
                break
            continue
        try:
            print_result(*answer(query, role), fmt)
        except click.UsageError:
            raise
        except click.ClickException as exc:
            failed += 1
            err.print(f"[red]{exc.format_message()}[/red]")
    if failed and not interactive:
        raise Failed(f"{failed} query(ies) failed or were refused; see above.")
