"""`shuku quality [TABLE]`: the checks failing now, since when, how many rows and where they are."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from pipelines.cli_shared import Unusable, existing_settings, wide


def _known_table(name: str) -> None:
    """Exit 2 unless ``name`` is a checked table (``layer.table`` or its bare name), with the nearest names."""
    from schemas.model import load_contracts
    from schemas.vocabulary import DATA_LAYERS
    from warehouse.catalog_sql import nearest

    names = [n for n, c in load_contracts().items() if c.layer in DATA_LAYERS]
    if name in names or name in {n.split(".", 1)[1] for n in names}:
        return
    near = nearest(name, names, cutoff=0.5)
    hint = f" (did you mean {', '.join(near)}?)" if near else " (`shuku status` lists the tables)"
    raise Unusable(f"no table {name}{hint}")


@click.command("quality")
@click.argument("table", required=False)
@click.option("--docs", is_flag=True, help="Rebuild the Data Docs pages from meta.quality_results and print "
              "the path of their index.")
def quality(table: str | None, docs: bool) -> None:
    """Show failing quality checks (all tables, or TABLE: `staging.gate_event` or `gate_event`).

    Exits 1 when an error-severity check fails; warnings are listed but do not fail.
    """
    from quality.report import failing_checks

    settings = existing_settings()
    if table is not None:
        _known_table(table)
    if docs:
        from quality.datadocs import rebuild_docs
        click.echo(rebuild_docs(settings))
        return
    failing = failing_checks(settings, table)
    if not failing:
        wide.print(f"No failing checks{' on ' + table if table else ''} (home {settings.home}).")
        return
    report = Table(title=f"Failing quality checks ({settings.home})")
    for column in ("table", "check", "severity", "since (UTC)", "rows", "sample", "where the rows are"):
        report.add_column(column, justify="right" if column == "rows" else "left")
    for row in failing:
        sample = json.loads(row["unexpected_sample"] or "[]")
        report.add_row(row["table_name"], row["check_name"], row["severity"],
                       row["since"].strftime("%Y-%m-%d %H:%M:%S"), f"{row['unexpected_count']:,}",
                       "\n".join(sample[:3]), row["where"])
    wide.print(report)
    errors = sum(1 for row in failing if row["severity"] == "error")
    if errors:
        wide.print(f"{errors} check(s) failing with severity error: fix the rows shown (or the landing file they came "
                  "from), then re-run the partition with `shuku run`.")
        sys.exit(1)
