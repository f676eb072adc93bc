"""`shuku status`: the latest runs, one row per table with its latest state, each failing check
once, the deliveries not loaded; as tables that fit the terminal (80 columns when piped, or
COLUMNS), or as one JSON document (`--format json`, keys in the README)."""

from __future__ import annotations

import datetime as dt
import json

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipelines.cli_harvest import print_coverage
from pipelines.cli_shared import Failed, existing_settings, sized_console


def _table(title: str, columns: list[tuple[str, dict]], rows: list[list[str]]) -> Table:
    """A borderless table, two spaces between columns, each at least as wide as its longest value
    (never cut with "…"): what cannot fit wraps, in the columns that allow it (a table's name
    only when nothing else can give)."""
    shown = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
                  title_justify="left", show_edge=False)
    for index, (name, options) in enumerate(columns):
        longest = max((len(Text.from_markup(row[index]).plain) for row in rows), default=0)
        fixed = {"min_width": longest, "no_wrap": True} if options.pop("whole", False) else {}
        shown.add_column(name, overflow="fold", **fixed, **options)
    for row in rows:
        shown.add_row(*row)
    return shown


WHOLE = {"whole": True}                        # never narrower than its longest value
NUMBER = {"justify": "right", "whole": True}


def _print_runs(console: Console, runs: list[dict]) -> None:
    colour = {"SUCCESS": "green", "FAILURE": "red"}
    rows = [[r["run_id"][:8], f"[{colour.get(r['status'], 'yellow')}]{r['status']}[/]", r["started"],
             r["stage"] or r["job"]] for r in runs]
    console.print(_table("latest runs", [("run", WHOLE), ("status", WHOLE), ("started", WHOLE), ("stage", {})], rows))


def _count(rows: int) -> str:
    """Rows in at most nine characters: exact up to 9,999,999, in millions above (exact in the JSON)."""
    return f"{rows:,}" if rows < 10_000_000 else f"{rows / 1e6:.1f} M"


def _print_tables(console: Console, tables: list[dict]) -> None:
    rows = [[t["table"], _count(t["rows"]), t["newest"] or "-",
             "[red]stale[/]" if t["stale"] else ("yes" if t["stale"] is False else "-"),
             "-" if t["quarantined"] is None else f"{t['quarantined']:,}",
             f"[red]{t['checks_failing']}[/]" if t["checks_failing"] else "0"] for t in tables]
    console.print(_table("tables (latest state)", [("table", WHOLE), ("rows", NUMBER), ("newest", WHOLE),
                                                   ("fresh", WHOLE), ("quaran-\ntined", NUMBER),
                                                   ("failing\nchecks", NUMBER)], rows))
    if reasons := [[t["table"], t["reasons"]] for t in tables if t["quarantined"]]:
        console.print(_table("quarantined lines by reason (quarantine.<source> holds them)",
                             [("table", WHOLE), ("lines by reason", {})], reasons))


def _print_checks(console: Console, failing: list[dict]) -> None:
    """Each failing check on a line of its own under its table's name (both whole), errors first."""
    rows, tables = [], sorted({f["table"] for f in failing},
                              key=lambda t: (min(f["severity"] for f in failing if f["table"] == t), t))
    for table in tables:
        rows.append([table, "", "", ""])
        for f in sorted((f for f in failing if f["table"] == table), key=lambda f: (f["severity"], f["check"])):
            colour = "red" if f["severity"] == "error" else "yellow"
            rows.append([f"  {f['check']}", f"[{colour}]{f['severity']}[/]", str(f["runs"]), (f["since"] or "-")[:10]])
    console.print(_table("failing checks, each once (`shuku quality TABLE` shows partitions and rows)",
                         [("table: check", WHOLE), ("severity", WHOLE), ("runs", NUMBER), ("since", WHOLE)], rows))


def _print_others(console: Console, settings, exceptions: list[dict], refused: list[dict], sweeps: list[dict]) -> None:
    if exceptions:
        rows = [[e["month"], e["platform"] or "-", e["report"] or "-",
                 "-" if e["code"] is None else f"{e['code']} {e['severity'] or ''}".strip(), e["message"] or ""]
                for e in exceptions]
        console.print(_table("COUNTER exceptions", [("month", WHOLE), ("platform", {}), ("report", WHOLE),
                                                    ("code", {}), ("message", {})], rows))
    print_coverage(settings, console)
    if refused:
        rows = [[f"landing/{r['file']} ({r['partition']})",
                 f"[{'yellow' if r['status'] == 'not_yet' else 'red'}]{r['status']}[/]", f"{r['read']:,}",
                 f"{r['quarantined']:,}", r["meaning"]] for r in refused]
        console.print(_table("deliveries not loaded (latest ingest of each file; the stored partitions are kept)",
                             [("file", {}), ("status", WHOLE), ("lines", NUMBER), ("quaran-\ntined", NUMBER),
                              ("what it means", {})], rows))
    if sweeps:
        rows = [[f"{s['swept_at']:%Y-%m-%d %H:%M}", s["sweep_id"][:8], str(s["files_deleted"]),
                 f"{s['rows_delinked']:,}"] for s in sweeps]
        console.print(_table("retention sweeps (meta.retention_log)",
                             [("swept (UTC)", WHOLE), ("sweep", WHOLE), ("landing files deleted", NUMBER),
                              ("rows de-linked", NUMBER)], rows))


def _plain(value):
    """A value as JSON holds it: dates and times in ISO 8601."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: one document with stable keys (README, `shuku status`), for scripts and monitoring.")
def status(fmt: str) -> None:
    """Latest runs; each table's latest state (rows, newest partition, freshness, quarantined lines,
    failing checks); each failing check once; deliveries not loaded.

    Exits 1 when the latest run failed or an error-severity check fails on its latest results.
    """
    from pipelines.status import (counter_exceptions, failing_checks_shown, latest_runs, refused_files,
                                  retention_sweeps, table_status)

    settings = existing_settings()
    runs = latest_runs(settings)
    failing = failing_checks_shown(settings)
    tables = table_status(settings, failing)
    exceptions, refused, sweeps = counter_exceptions(settings), refused_files(settings), retention_sweeps(settings)
    errors = sum(1 for f in failing if f["severity"] == "error")
    problems = (["the latest run failed"] if any(r["status"] == "FAILURE" for r in runs[:1]) else []) + (
        [f"{errors} error-severity check(s) fail; `shuku quality` shows the rows"] if errors else [])
    from warehouse.data_dictionary import dictionary_path
    dictionary = dictionary_path(settings) if dictionary_path(settings).exists() else None
    if fmt == "json":
        document = {"home": str(settings.home), "dictionary": dictionary and str(dictionary), "runs": runs,
                    "tables": [{k: v for k, v in t.items() if k != "reasons"} for t in tables],
                    "failing_checks": failing, "not_loaded": refused, "counter_exceptions": exceptions,
                    "retention_sweeps": sweeps, "problems": problems}
        click.echo(json.dumps(document, default=_plain, ensure_ascii=False, indent=1))
    else:
        console = sized_console()
        _print_runs(console, runs)
        _print_tables(console, tables)
        if failing:
            _print_checks(console, failing)
        _print_others(console, settings, exceptions, refused, sweeps)
        if dictionary:
            console.print("data dictionary (every table and column the roles read):")
            console.print(str(dictionary), markup=False, highlight=False, soft_wrap=True)   # a path, never cut
    if problems:
        raise Failed("; ".join(problems) + ".")
