"""The pipeline run behind `shuku run`, `shuku demo` and `shuku harvest`: the planned stages, one Dagster
run each, with progress on stderr and the alerts they give."""

from __future__ import annotations

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipelines.cli_shared import Failed, checked_library, err, one_line


def run_pipeline(settings, start, end, select, models: bool, reload_snapshots: bool = False) -> bool:
    """Run the stages `shuku run` plans for the range (every day with files when None), with a progress
    bar, one line per stage and the files not loaded; send the alerts the runs give. True when every
    stage succeeded."""
    from pipelines.definitions import build_definitions
    from pipelines.runner import (dagster_instance, empty_range, feeds_named, monthly_keys, months_outside_message,
                                  not_loaded_lines, plan, run_stage)

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
    results = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        overall = progress.add_task("pipeline", total=len(stages))
        for stage in stages:
            progress.update(overall, description=stage.label)
            result = run_stage(defs, instance, stage)
            results.append(result)
            mark = "[green]ok[/green]" if result.success else "[red]failed[/red]"
            progress.console.print(f"{mark} {stage.label} (run {result.run_id[:8]})")
            if not result.success:
                progress.console.print(f"   {one_line(result.error, 2000)}", style="red", markup=False,
                                       highlight=False, soft_wrap=True)
            progress.advance(overall)
            if not result.success:
                break
    for line in not_loaded_lines(settings, [r.run_id for r in results]):
        err.print(line, markup=False, highlight=False)
    from pipelines.alerts import alert_after_runs
    if sent := alert_after_runs(settings, instance, [r.run_id for r in results]):
        err.print(f"{len(sent)} alert(s) sent (`shuku alerts` lists them)")
    return all(r.success for r in results)
