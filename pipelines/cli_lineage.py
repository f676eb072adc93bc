"""`shuku trace` and `shuku lineage page`: the lineage an auditor reads.

Both rebuild the meta.lineage_* tables from the events file first, so they show every run
up to now without a pipeline step of their own.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipelines.cli_shared import existing_settings


def _loaded_settings():
    from lineage.store import load_events

    settings = existing_settings()
    load_events(settings)
    return settings


def _print_trace(result: dict) -> None:
    arrow = "→" if result["direction"] == "downstream" else "←"
    click.echo(f"{result['direction']} trace of {result['target']}"
               + (f" (partition {result['partition']})" if result["partition"] else ""))
    for hop in result["hops"]:
        click.echo(f"\n{hop['dataset']}.{hop['column']}")
        for expression in hop["expression"]:
            click.echo(f"    = {expression}")
        if hop["run_id"]:
            rows = f", {hop['row_count']:,} rows" if hop["row_count"] is not None else ""
            click.echo(f"    run {hop['run_id']} (Dagster run {hop['dagster_run_id']}) at {hop['ended_at']}{rows}")
        else:
            click.echo("    no completed run recorded")
        for check in hop["checks"]:
            mark = "pass" if check["success"] else "FAIL"
            observed = f" (observed {check['observed']})" if check["observed"] not in (None, "") else ""
            click.echo(f"    check {check['check']}: {mark}{observed}")
        for item in hop["inputs"]:
            masked = ", masking" if item["masking"] else ""
            table = item.get("namespace", "duckdb://").startswith("duckdb://")
            folder = item.get("namespace", "").partition("://")[2]
            name = item["dataset"] if table or not folder or folder.startswith("/") else f"{folder}/{item['dataset']}"
            source = f"{name}.{item['column']}" if table else f"{name} field {item['column']}"
            click.echo(f"    {arrow} {source} [{item['type']} {item['subtype']}{masked}]")
    if result["landing_files"]:
        click.echo("\nsources")
        for f in result["landing_files"]:
            # Under the home: relative to it (landing/…); else where the file is.
            relative = not f["namespace"].partition("://")[2].startswith("/")
            where = f["file"] if relative or f["kind"] == "sql" else f.get("path") or f["file"]
            missing = "" if f.get("present", True) else "  (not in this home)"
            size = f"{f['bytes']:,} bytes" if f["bytes"] is not None else "size unknown"
            when = {"sql": "(a value written in the model)", "config": "(read by the run)"}.get(
                f["kind"], f"arrived {f['ingested_at'] or 'unknown'}")
            click.echo(f"    {f['kind']} {where}  sha256 {f['sha256']}  {size}  {when}{missing}")


@click.command()
@click.argument("target", metavar="SCHEMA.TABLE.COLUMN")
@click.option("--partition", default=None, help="Trace the run that wrote this day (YYYY-MM-DD) or month (YYYY-MM).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--downstream", is_flag=True, help="Walk to the figures this column feeds instead.")
def trace(target: str, partition: str | None, fmt: str, downstream: bool) -> None:
    """Trace a published figure back to its landing files: expression, run, rows and checks at every hop."""
    from lineage.trace import TraceError, trace as walk

    settings = _loaded_settings()
    try:
        result = walk(settings, target, partition=partition, downstream=downstream)
    except TraceError as exc:
        raise click.UsageError(str(exc)) from None
    if fmt == "json":
        click.echo(json.dumps(result, default=str, ensure_ascii=False, indent=2))
    else:
        _print_trace(result)


@click.group()
def lineage() -> None:
    """Lineage of the warehouse: tables and columns from landing files to marts."""


@lineage.command()
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="HTML file to write (self-contained: opens without network).")
@click.option("--figure", default="marts.space_utilisation.occupancy_peak", show_default=True,
              help="The figure whose trace the page shows.")
def page(out: Path, figure: str) -> None:
    """Write the lineage page: table graph by layer, columns, column lineage, one figure's trace."""
    from lineage.page import render_page
    from lineage.trace import TraceError

    settings = _loaded_settings()
    try:
        html = render_page(settings, figure)
    except TraceError as exc:
        raise click.UsageError(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    click.echo(f"lineage page written to {out}")
