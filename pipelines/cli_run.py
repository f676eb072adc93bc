"""The pipeline run behind `shuku run`, `shuku demo` and `shuku harvest`: the planned stages, one Dagster
run each, with progress on stderr (the step, partitions and rows; plain lines when not a terminal),
a summary when it succeeds, and the alerts they give."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipelines.cli_shared import Failed, checked_library, err, one_line

if TYPE_CHECKING:
    from pipelines.progress import Tally


def run_pipeline(settings, start, end, select, models: bool, reload_snapshots: bool = False) -> bool:
    """Run the stages `shuku run` plans for the range (every day with files when None), with a progress
    bar, one line per stage and the files not loaded; send the alerts the runs give. True when every
    stage succeeded."""
    from pipelines.definitions import build_definitions
    from pipelines.runner import (dagster_instance, empty_range, feeds_named, monthly_keys, months_outside_message,
                                  not_loaded_lines, plan)

    try:
        feeds = feeds_named(select)
        stages = plan(settings, start, end, feeds, models=models, reload_snapshots=reload_snapshots)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if (nothing := empty_range(settings, start, end, feeds)) is not None:
        raise Failed(nothing)
    if outside := monthly_keys(settings, feeds)[1]:
        err.print(months_outside_message(outside), markup=False, highlight=False)
    planned = {key.path[-1] for stage in stages for key in stage.assets}
    kept = [f.name for f in feeds if f.partitioning is None and f.files(settings.landing)
            and not planned & set(f.tables)]
    if kept:
        err.print(f"{', '.join(kept)}: the newest export is loaded already; not loaded again "
                  "(--reload-snapshots to load it anyway)")
    checked_library(settings)
    from warehouse.lake.files import StorageError, check_home_writable, sweep_temp_files
    try:
        check_home_writable(settings)       # a full disk or a read-only home: refused before anything changes
    except StorageError as exc:
        raise Failed(str(exc)) from None
    sweep_temp_files(settings)              # left by an interrupted run
    instance = dagster_instance(settings)
    defs = build_definitions(settings)
    from pipelines.progress import Tally
    began = time.perf_counter()
    tally = Tally()
    results = run_stages(defs, instance, stages, tally)
    for line in not_loaded_lines(settings, [r.run_id for r in results]):
        err.print(line, markup=False, highlight=False)
    from pipelines.alerts import alert_after_runs
    if sent := alert_after_runs(settings, instance, [r.run_id for r in results]):
        err.print(f"{len(sent)} alert(s) sent (`shuku alerts` lists them)")
    ok = all(r.success for r in results)
    if ok:
        failed = len(tally.checks_failed)
        err.print(f"done in {time.perf_counter() - began:.0f} s: {len(tally.tables)} table(s) changed, "
                  f"{tally.rows_written:,} rows written, {tally.quarantined:,} line(s) quarantined, "
                  f"{failed} check(s) failed" + (" (`shuku status` lists them)" if failed else ""),
                  markup=False, highlight=False)
    return ok


def _step(key: str) -> str:
    """A step as the librarian knows it: ``core__fact_loan`` is the table core.fact_loan."""
    return key.replace("__", ".") if key else "starting"


def _counts(tally: Tally) -> str:
    """The partitions prepared and the rows written so far, in a few words."""
    done = f"partitions {tally.partitions_done}/{tally.partitions_total}, " if tally.partitions_total else ""
    return f"{done}{tally.rows_written:,} rows written"


def run_stages(defs, instance, stages, tally: Tally) -> list:
    """Run the stages one after the other until one fails, following each run's events into ``tally``:
    on a terminal, a bar of the steps naming the current one; else a plain line per step ended."""
    from pipelines.progress import Follower
    from pipelines.runner import run_stage

    results = []
    live = err.is_terminal
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, transient=True, disable=not live)
    with progress:
        for stage in stages:
            task = progress.add_task(stage.label, total=None)
            printed, steps_before, done_before = len(tally.finished), tally.steps_total, tally.steps_done

            def shown(now: Tally, task=task, stage=stage) -> None:
                nonlocal printed
                progress.update(task, description=f"{stage.label}: {_step(now.step)} ({_counts(now)})",
                                total=(now.steps_total - steps_before) or None, completed=now.steps_done - done_before)
                if not live:
                    for step, success in now.finished[printed:]:
                        err.print(f"   {'ok' if success else 'failed'} {_step(step)} ({_counts(now)})",
                                  markup=False, highlight=False)
                printed = len(now.finished)

            if not live:
                err.print(f"{stage.label}: started", markup=False, highlight=False)
            follower = Follower(instance, tally, stage, shown)
            follower.start()
            try:
                result = run_stage(defs, instance, stage)
            finally:
                follower.stop()
            results.append(result)
            progress.remove_task(task)
            mark = "[green]ok[/green]" if result.success else "[red]failed[/red]"
            err.print(f"{mark} {stage.label} (run {result.run_id[:8]})")
            if not result.success:
                err.print(f"   {one_line(result.error, 2000)}", style="red", markup=False, highlight=False,
                          soft_wrap=True)
                break
    return results
