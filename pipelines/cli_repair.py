"""`shuku repair`: find damaged partition files (against meta.file_checksums) and rebuild them.

A staging, quarantine or COUNTER meta partition is rebuilt by re-running its ingest asset for
that partition from landing; a core or mart table by re-running its model; the lineage tables
from the events file. Damaged files are first moved to ``damaged/<time>/`` under the home
folder, so nothing is deleted and no query trips over them meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from pipelines.cli_shared import Failed, err, out, prepared_settings


@dataclass
class Rebuild:
    """One way to rebuild some damaged files: a Dagster stage, or the lineage tables."""

    label: str
    stage: object | None = None              # pipelines.runner.Stage
    problems: list = field(default_factory=list)
    outcome: str = ""
    ok: bool = False


def _feed_of_table(table: str):
    from assets.feeds import FEEDS
    return next((f for f in FEEDS if table in f.tables), None)


def _partition_key(feed, folder_value: str) -> str | None:
    from schemas.vocabulary import DAY, MONTH
    if feed.partitioning == DAY:
        return folder_value[:10]
    if feed.partitioning == MONTH:
        return folder_value[:7]
    return None


def plan_rebuilds(problems) -> tuple[list[Rebuild], list]:
    """Group damaged files by what rebuilds them; also the files nothing can rebuild."""
    import dagster as dg

    from assets.feeds import FEEDS
    from lineage.store import TABLES as LINEAGE_TABLES
    from pipelines.jobs import DAILY_JOB, MODELS_JOB, MONTHLY_JOB, SNAPSHOT_JOB
    from pipelines.runner import Stage
    from schemas.vocabulary import DAY, MODEL_LAYERS, MONTH

    rebuilds: dict[tuple, Rebuild] = {}
    orphans = []
    for problem in problems:
        layer, table = problem.table_name.split(".", 1)
        feed, key = None, None
        parts = dict(p.split("=", 1) for p in problem.partition_path.split("/") if "=" in p)
        if layer == "staging":
            feed = _feed_of_table(table)
            key = _partition_key(feed, next(iter(parts.values()), "")) if feed else None
        elif layer == "quarantine":
            feed = _feed_of_table(parts.get("staging_table", ""))
            value = parts.get("partition_key", "all")
            key = None if value == "all" or feed is None else _partition_key(feed, value)
        elif layer == "meta" and problem.table_name in LINEAGE_TABLES:
            rebuilds.setdefault(("lineage",), Rebuild("lineage tables from lineage/events.jsonl")).problems.append(problem)
            continue
        elif layer == "meta":
            feed = next((f for f in FEEDS if table in {t for t, _ in f.meta_tables}), None)
            key = problem.partition_path if feed else None
        elif layer in MODEL_LAYERS:
            asset = dg.AssetKey([layer, table])
            rebuilds.setdefault(("model", problem.table_name), Rebuild(
                f"{problem.table_name} (its model)", Stage(f"rebuild {problem.table_name}", MODELS_JOB, [asset], None),
            )).problems.append(problem)
            continue
        if feed is None:
            orphans.append(problem)
            continue
        assets = [dg.AssetKey(["staging", t]) for t in feed.tables]
        if feed.partitioning is None:
            stage = Stage(f"reload {feed.name} snapshot", SNAPSHOT_JOB, assets, None)
        else:
            job = DAILY_JOB if feed.partitioning == DAY else MONTHLY_JOB
            assert feed.partitioning in (DAY, MONTH)
            stage = Stage(f"reload {feed.name} {key}", job, assets, (key, key))
        rebuilds.setdefault(("feed", feed.name, key), Rebuild(stage.label + " from landing", stage)).problems.append(problem)
    return list(rebuilds.values()), orphans


@click.command()
@click.option("--check", is_flag=True, help="Only report damaged files; rebuild nothing.")
def repair(check: bool) -> None:
    """Find partition files damaged since they were written (truncated, bit-flipped, missing) and rebuild them.

    Exit 0 when every file is whole (or was rebuilt), 1 when damage remains (or, with --check, was found).
    """
    from warehouse.integrity import move_aside, verify
    from warehouse.lake.paths import damaged_dir

    settings = prepared_settings()
    problems, checked = verify(settings)
    if not problems:
        out.print(f"{checked:,} partition file(s) checked against meta.file_checksums: all whole.")
        return
    out.print(f"damaged partition files ({len(problems)} of {checked:,} checked against meta.file_checksums):")
    for p in problems:
        out.print(f"  {p.problem:<10} {p.file_path}  ({p.table_name} {p.partition_path or 'whole table'}): {p.detail}",
                  soft_wrap=True, highlight=False, markup=False)
    if check:
        raise Failed(f"{len(problems)} damaged file(s); `shuku repair` rebuilds them from landing.")

    from lineage.store import load_events
    from pipelines.definitions import build_definitions
    from pipelines.runner import dagster_instance, run_stage

    rebuilds, orphans = plan_rebuilds(problems)
    for problem in problems:
        if problem not in orphans:
            moved = move_aside(settings, problem)
            if moved is not None:
                err.print(f"moved {problem.file_path} to {moved.relative_to(settings.home)}", highlight=False)
    instance = defs = None
    for rebuild in rebuilds:
        if rebuild.stage is None:
            load_events(settings)
            rebuild.ok, rebuild.outcome = True, "rebuilt"
            continue
        if instance is None:
            instance, defs = dagster_instance(settings), build_definitions(settings)
        result = run_stage(defs, instance, rebuild.stage)
        rebuild.ok = result.success
        rebuild.outcome = f"run {result.run_id[:8]}" + ("" if result.success else f" failed: {result.error}")
    remaining, _ = verify(settings)
    left = {p.file_path for p in remaining}
    out.print("repair:")
    for rebuild in rebuilds:
        files = [p.file_path for p in rebuild.problems]
        whole = rebuild.ok and not left & set(files)
        note = rebuild.outcome if whole or not rebuild.ok else (
            f"{rebuild.outcome}: wrote nothing for it (are its landing files still there?)")
        out.print(f"  {'rebuilt' if whole else 'NOT rebuilt':<11} {rebuild.label}: {note}", soft_wrap=True,
                  highlight=False, markup=False)
        for name in files:
            out.print(f"      {name}", soft_wrap=True, highlight=False, markup=False)
    for orphan in orphans:
        out.print(f"  NOT rebuilt {orphan.file_path}: nothing rebuilds it; left in place, restore it from a backup",
                  soft_wrap=True, highlight=False, markup=False)
    if remaining:
        raise Failed(f"{len(remaining)} damaged file(s) remain; see above. The damaged copies are under "
                     f"{damaged_dir(settings)}.")
    out.print(f"every damaged file was rebuilt; the damaged copies are kept under {damaged_dir(settings)}.")
