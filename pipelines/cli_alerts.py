"""`shuku alerts`: the latest alerts (failed runs, failed checks) from the home folder's alerts log."""

from __future__ import annotations

import json

import click
from rich.table import Table

from pipelines.cli_shared import existing_settings, wide


@click.command("alerts")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True, help="How many, newest first.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def alerts(limit: int, fmt: str) -> None:
    """List the latest alerts, newest first, with the command that shows more about each.

    Alerts are written by the `run_failure_alerts` and `check_failure_alerts` sensors and by
    `shuku run`; the log is $SHUKU_HOME/alerts/alerts.jsonl (one JSON object a line).
    """
    from pipelines.alert_delivery import DELIVERY_FAILED, read_alerts

    settings = existing_settings()
    rows = read_alerts(settings)
    failed = {}
    for row in rows:
        if row.get("kind") == DELIVERY_FAILED:
            failed.setdefault(row.get("key"), []).append(f"{row.get('channel')} failed: {row.get('error')}")
    latest = [r for r in rows if r.get("kind") != DELIVERY_FAILED][::-1][:limit]
    if fmt == "json":
        for row in latest:
            click.echo(json.dumps({**row, "delivery_failures": failed.get(row.get("key"), [])}, ensure_ascii=False))
        return
    if not latest:
        wide.print(f"No alerts (log {settings.alerts_log}).")
        return
    table = Table(title=f"Latest alerts ({settings.alerts_log})")
    for column in ("at (UTC)", "alert", "run", "see", "sent to"):
        table.add_column(column)
    for row in latest:
        sent = ", ".join(row.get("channels") or ["log"])
        problems = failed.get(row.get("key"))
        table.add_row((row.get("at") or "")[:19].replace("T", " "), (row.get("summary") or "").removeprefix("[shuku] "),
                      (row.get("run_id") or "")[:8], "\n".join((row.get("see") or [])[:2]),
                      sent + ("".join(f"\n[red]{p}[/red]" for p in problems) if problems else ""))
    wide.print(table)
