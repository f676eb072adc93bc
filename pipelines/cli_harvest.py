"""`shuku harvest`: ask the configured COUNTER_SUSHI platforms for their reports, land the answers, load them."""

from __future__ import annotations

import datetime as dt

import click
from rich.table import Table

from pipelines.cli_run import run_pipeline
from pipelines.cli_shared import Failed, checked_library, err, out, prepared_settings


def _month(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a month; write it YYYY-MM (e.g. 2025-09).", param_hint=option) from None


@click.command()
@click.option("--platform", "names", multiple=True, help="Harvest this platform only (its `name` in counter.platforms); "
              "repeat for several. Default: every configured platform.")
@click.option("--from", "first", default=None, help="First month, YYYY-MM (default: the oldest month still pending, "
              "else the previous month).")
@click.option("--to", "last", default=None, help="Last month, YYYY-MM (default: the previous month).")
@click.option("--no-load", is_flag=True, help="Land the answers only; load them later with `shuku run --select counter`.")
@click.option("--no-models", is_flag=True, help="Load staging only; do not rebuild core tables and marts.")
def harvest(names: tuple[str, ...], first: str | None, last: str | None, no_load: bool, no_models: bool) -> None:
    """Harvest COUNTER reports over COUNTER_SUSHI into landing/counter, then load them.

    Asks each platform's /status, then each configured report for the months; queued and busy answers
    are asked again after a growing wait. The outcome of every platform × report × month is kept in
    meta.counter_harvest (`shuku status` shows it). Exit 1 when a cell failed or the load failed.
    """
    from assets.eresources.coverage import FAILED, NO_USAGE, PARTIAL, PENDING, pending_months
    from assets.eresources.harvest import check_range, harvest as run_harvest, months_between
    from warehouse.counter_platforms import CounterConfigError

    settings = prepared_settings()
    library = checked_library(settings)
    counter = library.counter
    if not counter.platforms:
        raise click.UsageError(f"no COUNTER platforms to harvest: add them under `counter.platforms` in "
                               f"{library.source} (the README's \"Harvesting COUNTER reports\" shows how).")
    try:
        platforms = [counter.platform(n) for n in names] if names else list(counter.platforms)
    except CounterConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--platform") from None
    today = dt.datetime.now(library.tz).date()
    previous = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    start, end = _month(first, "--from"), _month(last, "--to") or previous
    if start is None:
        waiting = [m for m in pending_months(settings, [p.name for p in platforms]) if m <= end]
        start = min(waiting + [end])
    try:
        check_range(start, end, today)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    months = months_between(start, end)
    with err.status(f"harvesting {len(platforms)} platform(s), {start:%Y-%m}..{end:%Y-%m}…") as shown:
        done = run_harvest(settings, library, months, platforms, log=lambda text: shown.update(f"harvesting {text}…"))
    table = Table(title=f"COUNTER harvest {start:%Y-%m}..{end:%Y-%m} (cells: platform × report × month)")
    for col in ("platform", "report", "harvested", "partial", "no usage", "pending", "failed"):
        table.add_column(col, justify="left" if col in ("platform", "report") else "right")
    for platform in platforms:
        for report_id in platform.reports:
            mine = [c for c in done.cells if c["platform"] == platform.name and c["report_id"] == report_id]
            table.add_row(platform.name, report_id, *(str(sum(1 for c in mine if c["status"] == s))
                                                      for s in ("harvested", PARTIAL, NO_USAGE, PENDING, FAILED)))
    out.print(table)
    for note in done.notes:
        err.print(note, markup=False, highlight=False)
    err.print(f"{len(done.landed)} answer(s) stored under {settings.landing / 'counter'}; "
              "`shuku status` shows the coverage matrix.", markup=False, highlight=False)
    loaded = True
    if done.landed and not no_load:
        landed = [dt.date.fromisoformat(f"{m}-01") for m in done.landed_months]
        last_day = (max(landed) + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        loaded = run_pipeline(settings, min(landed), last_day, ["counter"], not no_models)
    problems = ([f"{done.count(FAILED)} cell(s) failed (see above and `shuku status`)"] if done.count(FAILED) else []) + (
        ["loading the harvested reports failed; `shuku status` lists the run"] if not loaded else [])
    if problems:
        raise Failed("; ".join(problems) + ".")


def print_coverage(settings, console=None) -> None:
    """Print the harvest coverage matrix (latest 12 months) and the cells not harvested with their
    reasons (on ``console``, else standard output's)."""
    console = console or out
    from assets.eresources.coverage import MARKS, matrix, problems, stored

    frame = stored(settings)
    months, rows = matrix(frame)
    if not rows:
        return
    legend = ", ".join(f"{mark} {status.replace('_', ' ')}" for status, mark in MARKS.items())
    shown = Table(title=f"COUNTER harvest coverage (meta.counter_harvest; {legend})")
    shown.add_column("platform")
    shown.add_column("report")
    for month in months:
        shown.add_column(month[2:], justify="center")
    for platform, report_id, marks in rows:
        shown.add_row(platform, report_id, *marks)
    console.print(shown)
    if missing := problems(frame):
        why = Table(title="COUNTER harvest: cells not harvested (newest first)")
        for col in ("month", "platform", "report", "status", "code", "reason"):
            why.add_column(col)
        for p in missing:
            why.add_row(f"{p['usage_month']:%Y-%m}", p["platform"], p["report_id"], p["status"],
                        "-" if p["code"] is None else str(p["code"]), p["reason"] or "")
        console.print(why)
