"""The `shuku` command: generate, run, ui, demo here; the other commands in
the cli_*.py modules beside it (exit codes and shared helpers: pipelines/cli_shared.py)."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from pipelines.cli_alerts import alerts
from pipelines.cli_api import serve, token
from pipelines.cli_audit import audit
from pipelines.cli_contracts import contracts, publish
from pipelines.cli_harvest import harvest
from pipelines.cli_lineage import lineage, trace
from pipelines.cli_parse import parse
from pipelines.cli_privacy import consent, erase, report
from pipelines.cli_quality import quality
from pipelines.cli_repair import repair
from pipelines.cli_run import run_pipeline
from pipelines.cli_status import status
from pipelines.cli_sql import shell, sql
from pipelines.cli_shared import (Failed, checked_library, err, no_traceback, out, prepared_settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Shuku (书库): a data-governance lakehouse for university libraries.

    Every command works on the home folder named by SHUKU_HOME (default ./var).
    """


@main.command()
@click.option("--scale", type=click.Choice(["tiny", "small", "university"]), default="small", show_default=True)
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, same bytes.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2025-09-01", show_default=True)
@click.option("--days", type=click.IntRange(1, 3660), default=28, show_default=True)
def generate(scale: str, seed: int, start: dt.datetime, days: int) -> None:
    """Write a synthetic library's landing files (all formats) under the home folder."""
    from generator import generate as make

    settings = prepared_settings()
    library = checked_library(settings)
    began = time.perf_counter()
    with err.status(f"generating {scale} library, {days} days from {start.date()}…"):
        report = make(settings.landing, library, scale=scale, seed=seed, start=start.date(), days=days)
    _print_generation(report, settings, time.perf_counter() - began)


def _print_generation(report, settings, seconds: float) -> None:
    table = Table(title=f"landing files written to {settings.landing} in {seconds:.1f} s")
    table.add_column("source")
    table.add_column("files", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("defects written (for quarantine and checks to find)")
    rows = report.rows_by_source()
    defects = report.defects_by_source()
    for source in sorted(rows):
        files = sum(1 for f in report.files if f.source == source)
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(defects.get(source, {}).items()) if v) or "-"
        table.add_row(source, str(files), f"{rows[source]:,}", kinds)
    out.print(table)
    out.print(f"what truly happened (for checks; never loaded): {settings.home / 'truth'}")


@main.command()
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day (default: first landing day).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day (default: last landing day).")
@click.option("--select", "select", default=None, help="Comma-separated feeds or sources, e.g. circulation,gates.")
@click.option("--no-models", is_flag=True, help="Load staging only; do not rebuild core tables and marts.")
@click.option("--reload-snapshots", is_flag=True,
              help="Load the patron and catalogue exports even when the newest ones are loaded already "
                   "(after a contract or pseudonym-key change).")
@no_traceback("run", "run")
def run(start, end, select, no_models, reload_snapshots) -> None:
    """Load landing files into staging for a date range, then rebuild core and marts.

    Patron and catalogue exports already loaded as they are (same file, same SHA-256) are not
    loaded again."""
    settings = prepared_settings()
    ok = run_pipeline(settings, start.date() if start else None, end.date() if end else None,
              select.split(",") if select else None, not no_models, reload_snapshots=reload_snapshots)
    if not ok:
        raise Failed("a run failed; `shuku status` lists it and `shuku ui` shows its logs.")


@main.command()
@click.option("--port", type=int, default=3000, show_default=True)
def ui(port: int) -> None:
    """Start the Dagster UI on 127.0.0.1 for this home folder."""
    from pipelines.launch import ui_args
    from pipelines.runner import dagster_instance

    settings = prepared_settings()
    dagster_instance(settings)
    os.environ["SHUKU_HOME"] = str(settings.home)
    exe = Path(sys.executable).parent / "dagster"
    args = [str(exe), *ui_args(port)]
    err.print(f"Dagster UI on http://127.0.0.1:{port} (Ctrl-C to stop)")
    os.execv(args[0], args)


@main.command()
@click.option("--scale", type=click.Choice(["tiny", "small"]), default="small", show_default=True)
@click.option("--days", type=click.IntRange(1, 366), default=61, show_default=True,
              help="From 2025-09-01; the default covers September and October.")
@click.option("--seed", type=int, default=42, show_default=True)
@no_traceback("demo", "run")
def demo(scale: str, days: int, seed: int) -> None:
    """Generate a synthetic library (unless landing has files already), run everything, summarise."""
    from generator import generate as make
    from pipelines.status import table_status

    settings = prepared_settings()
    from generator.demo_library import write_demo_library
    from warehouse.settings import DEFAULT_LIBRARY_CONFIG
    if settings.library_config == DEFAULT_LIBRARY_CONFIG and not any(settings.landing.rglob("*.*")):
        write_demo_library(settings.home, DEFAULT_LIBRARY_CONFIG, scale)     # seats for the demo's readers
    library = checked_library(settings)
    start = dt.date(2025, 9, 1)
    began = time.perf_counter()
    if any(settings.landing.rglob("*.*")):
        err.print(f"landing already holds files ({settings.landing}); using them. "
                  "Remove the home folder for a fresh demo.")
    else:
        with err.status(f"generating a {scale} library, {days} days from {start}…"):
            report = make(settings.landing, library, scale=scale, seed=seed, start=start, days=days)
        _print_generation(report, settings, time.perf_counter() - began)
    ok = run_pipeline(settings, None, None, None, True)
    summary = Table(title=f"warehouse built in {time.perf_counter() - began:.0f} s")
    for col in ("table", "rows", "quarantined", "by reason"):
        summary.add_column(col, justify="right" if col in ("rows", "quarantined") else "left")
    for t in table_status(settings):
        quarantined = "" if t["quarantined"] is None else f"{t['quarantined']:,}"
        summary.add_row(t["table"], f"{t['rows']:,}", quarantined, t["reasons"] or "")
    out.print(summary)
    out.print(f"""
[bold]Where to look[/bold]
  home folder      {settings.home}
  library config   {settings.library_config}   ({library.seat_capacity:,} seats)
  warehouse        {settings.warehouse_db}   (open it read-only in any DuckDB client started in the home folder)
  try              shuku sql "select * from marts.space_utilisation order by utilisation desc limit 5"
  status           shuku status
  Dagster UI       shuku ui   → http://127.0.0.1:3000   (or: make ui)
  (with SHUKU_HOME={settings.home}, and .venv/bin on PATH or as .venv/bin/shuku)""")
    if not ok:
        raise Failed("the demo run failed; see above.")


for command in (status, parse, quality, contracts, publish, trace, lineage, consent, erase, report, alerts, audit, serve, token,
                repair, harvest, sql, shell):
    main.add_command(command)


if __name__ == "__main__":
    main()
