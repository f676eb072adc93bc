"""`shuku quality [TABLE]`: the checks failing now, since when, how many rows and where they are."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

out = Console(width=None if sys.stdout.isatty() else 200)

# The latest result of each check on each partition (range), and when its current failing streak began.
FAILING_SQL = """
WITH ranked AS (
    SELECT *, row_number() OVER (PARTITION BY table_name, check_name, partition_key ORDER BY checked_at DESC) AS recency
    FROM meta.quality_results
), last_pass AS (
    SELECT table_name, check_name, partition_key, max(checked_at) AS passed_at
    FROM meta.quality_results WHERE success GROUP BY ALL
), streak AS (
    SELECT r.table_name, r.check_name, r.partition_key, min(r.checked_at) AS since
    FROM meta.quality_results AS r LEFT JOIN last_pass AS p USING (table_name, check_name, partition_key)
    WHERE NOT r.success AND r.checked_at > coalesce(p.passed_at, TIMESTAMP '0001-01-01')
    GROUP BY ALL
)
SELECT ranked.table_name, ranked.check_name, ranked.severity, ranked.partition_key, streak.since,
       ranked.unexpected_count, ranked.unexpected_sample, ranked.run_id
FROM ranked JOIN streak USING (table_name, check_name, partition_key)
WHERE ranked.recency = 1 AND NOT ranked.success AND ($table IS NULL OR ranked.table_name = $table
      OR split_part(ranked.table_name, '.', 2) = $table)
ORDER BY ranked.severity, ranked.table_name, ranked.check_name, ranked.partition_key
"""


def failing_checks(settings, table: str | None = None) -> list[dict]:
    """Checks whose latest result failed, newest state per table, check and partition range."""
    from warehouse.storage import compute_connection

    con = compute_connection(settings)
    try:
        cursor = con.execute(FAILING_SQL, {"table": table})
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def rows_location(settings, table_name: str, partition_key: str) -> str:
    """Where the checked rows live: the partition folder(s), or the table's folder."""
    from warehouse.contracts import contract_for
    from warehouse.storage import table_dir

    contract = contract_for(table_name)
    folder = table_dir(settings, contract)
    part = contract.partition_column
    if part is not None and partition_key != "all":
        first, _, last = partition_key.partition("..")
        to_day = (lambda k: k) if contract.partitioning == "day" else (lambda k: f"{k}-01")
        keys = to_day(first) + (f"..{to_day(last)}" if last else "")
        folder = folder / f"{part.name}={keys}"
    try:
        return str(folder.relative_to(settings.home))
    except ValueError:
        return str(folder)


@click.command("quality")
@click.argument("table", required=False)
def quality(table: str | None) -> None:
    """Show failing quality checks (all tables, or TABLE: `staging.gate_event` or `gate_event`).

    Exits 1 when an error-severity check fails; warnings are listed but do not fail.
    """
    from warehouse.settings import Settings

    settings = Settings.from_env().ensure()
    failing = failing_checks(settings, table)
    if not failing:
        out.print(f"No failing checks{' on ' + table if table else ''} (home {settings.home}).")
        return
    report = Table(title=f"Failing quality checks ({settings.home})")
    for column in ("table", "check", "severity", "since (UTC)", "rows", "sample", "where the rows are"):
        report.add_column(column, justify="right" if column == "rows" else "left")
    for row in failing:
        sample = json.loads(row["unexpected_sample"] or "[]")
        report.add_row(row["table_name"], row["check_name"], row["severity"],
                       row["since"].strftime("%Y-%m-%d %H:%M:%S"), f"{row['unexpected_count']:,}",
                       "\n".join(sample[:3]), rows_location(settings, row["table_name"], row["partition_key"]))
    out.print(report)
    errors = sum(1 for row in failing if row["severity"] == "error")
    if errors:
        out.print(f"{errors} check(s) failing with severity error: fix the rows shown (or the landing file they came "
                  "from), then re-run the partition with `shuku run`.")
        sys.exit(1)
