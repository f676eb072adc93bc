"""Running the pipeline outside the UI: the stages of `shuku run` on the persistent instance."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass

import dagster as dg

from assets.feeds import FEEDS, Feed
from assets.ingest_log import snapshot_is_loaded
from pipelines.launch import STAGE_TAG, execute_as_served, launch_tags, record_backfill
from pipelines.jobs import DAILY_JOB, MODELS_JOB, MONTHLY_JOB, SNAPSHOT_JOB
from schemas.vocabulary import DAY, MONTH
from warehouse.settings import REPO_ROOT, Settings

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The home folder's Dagster instance (SQLite storage, telemetry off)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(REPO_ROOT / "dagster.yaml", config)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


@dataclass
class Stage:
    label: str
    job: str
    assets: list[dg.AssetKey]
    range: tuple[str, str] | None


@dataclass
class StageResult:
    stage: Stage
    run_id: str
    success: bool
    error: str | None


def landing_range(settings: Settings, feeds: list[Feed]) -> tuple[dt.date, dt.date] | None:
    """The first and last day that daily landing files cover."""
    days = sorted(feed.key_of(p) for feed in feeds if feed.partitioning == DAY for p in feed.files(settings.landing))
    if not days:
        return None
    return dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])


def empty_range(settings: Settings, start: dt.date | None, end: dt.date | None, feeds: list[Feed]) -> str | None:
    """Why a run would load nothing (no landing file of ``feeds`` in start..end, or none at all), else None."""
    dated = [f for f in feeds if f.partitioning is not None]
    if start is None and end is None:
        if any(f.files(settings.landing) for f in feeds):
            return None
        folders = sorted({f"landing/{f.folder}" for f in feeds})
        return (f"no landing files at all in {', '.join(folders)} (under {settings.home}); nothing was run. "
                "Put the exports there (or `shuku generate` a synthetic library) and re-run.")
    if not dated:
        return None
    first, last = start or dt.date.min, end or dt.date.max
    for feed in dated:
        for path in feed.files(settings.landing):
            for key in feed.keys_of(path):
                day = dt.date.fromisoformat(key if feed.partitioning == DAY else f"{key}-01")
                upto = day if feed.partitioning == DAY else (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
                if first <= day <= last or (feed.partitioning == MONTH and day <= last and first < upto):
                    return None
    folders = sorted({f"landing/{f.folder}" for f in dated})
    shown = f"{start or 'the first day'}..{end or 'the last day'}"
    return (f"no landing files for {shown} in {', '.join(folders)} (under {settings.home}); nothing was run. "
            "Check the dates (--from/--to) and that the exports for them were delivered.")


def monthly_keys(settings: Settings, feeds: list[Feed]) -> tuple[list[str], list[str]]:
    """The months the monthly feeds' landing files cover (a COUNTER report of a year covers twelve):
    those that are month partitions, and those that are not (before the first, or not over yet)."""
    from assets.partitions import month_range
    from warehouse.library import load_library
    covered = sorted({k for f in feeds if f.partitioning == MONTH for p in f.files(settings.landing)
                      for k in f.keys_of(p)})
    if not covered:
        return [], []
    first, last = month_range(load_library(settings.library_config))
    return [m for m in covered if first <= m <= last], [m for m in covered if not first <= m <= last]


def months_outside_message(months: list[str]) -> str:
    shown = ", ".join(months[:12]) + (" …" if len(months) > 12 else "")
    return (f"COUNTER usage of {shown} is not loaded: COUNTER months are kept from January 2019 (Release 5) to "
            "the last month that has ended (where a file also covers a kept month, these rows are in "
            "quarantine.counter as wrong_partition)")


def not_loaded_lines(settings: Settings, run_ids: list[str]) -> list[str]:
    """What the runs did not load and why, file by file (an unreadable or superseded report, a
    queued answer …), for the summary after `shuku run`; the runs themselves do not fail for it."""
    from assets.ingest_log import not_loaded
    lines = []
    for (source, status, other), months in not_loaded(settings, run_ids).items():
        span = months[0] if len(months) == 1 else f"{months[0]}..{months[-1]} ({len(months)} months)"
        why = {"superseded": f"superseded by the newer delivery landing/{other}",
               "not_yet": "the platform says the usage is not ready yet (queued or busy): harvest it again later",
               "exceptions_only": "an answer with exceptions only (meta.counter_exceptions)",
               "unreadable": "unreadable, quarantined (quarantine.<source>, reason unreadable_file)",
               "rejected": "mostly unreadable lines, quarantined",
               "unrecognised": "structure not recognised",
               "empty": "empty (no bytes, or a header and no rows): usually a failed export, ask for it again"
               }.get(status, status)
        lines.append(f"not loaded: landing/{source} for {span}: {why}")
    return lines


def plan(settings: Settings, start: dt.date | None, end: dt.date | None, feeds: list[Feed],
         models: bool = True, reload_snapshots: bool = False) -> list[Stage]:
    """The runs that load ``feeds`` for the days start..end, then rebuild the models.

    A snapshot (patrons, catalogue) whose newest export is already loaded as it is is left out,
    unless ``reload_snapshots``."""
    stages = []
    snapshot = [dg.AssetKey(["staging", t]) for f in feeds
                if f.partitioning is None and f.files(settings.landing)
                and (reload_snapshots or not snapshot_is_loaded(settings, f)) for t in f.tables]
    if snapshot:
        stages.append(Stage("patron and catalogue snapshots", SNAPSHOT_JOB, snapshot, None))
    if start and end and end < start:
        raise ValueError(f"--to {end} is before --from {start}.")
    # Days: the range asked for, else what the daily files cover, from the first daily partition on.
    first_day, last_day = start, end
    if first_day is None or last_day is None:
        found = landing_range(settings, feeds)
        if found:
            first_day, last_day = first_day or found[0], last_day or found[1]
    daily = [dg.AssetKey(["staging", t]) for f in feeds if f.partitioning == DAY for t in f.tables]
    if daily and first_day and last_day:
        from warehouse.library import load_library
        first_day = max(first_day, load_library(settings.library_config).partitions_start)
        if first_day <= last_day:
            stages.append(Stage(f"daily feeds {first_day}..{last_day}", DAILY_JOB, daily,
                                (first_day.isoformat(), last_day.isoformat())))
    # Months: every month the COUNTER files cover (years of history at a first load), within the range asked for.
    monthly = [dg.AssetKey(["staging", t]) for f in feeds if f.partitioning == MONTH for t in f.tables]
    first, last = (start.strftime("%Y-%m") if start else "0000-00"), (end.strftime("%Y-%m") if end else "9999-99")
    months = [m for m in monthly_keys(settings, feeds)[0] if first <= m <= last]
    if monthly and months:
        stages.append(Stage(f"COUNTER months {months[0]}..{months[-1]}", MONTHLY_JOB, monthly, (months[0], months[-1])))
    if models:
        stages.append(Stage("core tables and marts", MODELS_JOB, [], None))
    return stages


def error_message(error) -> str:
    """The message of the error a step raised, without Dagster's wrapper around it."""
    while error.cause is not None and error.cls_name in ("DagsterExecutionStepExecutionError",):
        error = error.cause
    # `assets.ingest.DeliveryRefused: …` → `DeliveryRefused: …`
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", error.message.strip())


# Who runs a stage: a run whose process died (killed, crashed) is found by these and released.
PID_TAG, HOST_TAG = "shuku/pid", "shuku/host"
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs of `shuku` processes on this machine that died mid-run, and free the
    concurrency-pool slots they held (Dagster keeps them claimed, so every later run of the pool
    would wait for ever). Returns the run ids released."""
    released = []
    host = socket.gethostname()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        pid = run.tags.get(PID_TAG, "")
        if run.tags.get(HOST_TAG) != host or not pid.isdigit() or int(pid) == os.getpid() or not _process_gone(int(pid)):
            continue
        instance.report_run_failed(run, message=f"the shuku process running it (pid {pid}) ended before the run did "
                                                "(killed or crashed); marked failed by the next run.")
        released.append(run.run_id)
    holding = list(instance.event_log_storage.get_concurrency_run_ids())
    finished = {r.run_id for r in instance.get_runs(filters=dg.RunsFilter(run_ids=holding))
                if r.status not in UNFINISHED} if holding else set()
    for run_id in set(released) | finished:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return released


def run_stage(defs: dg.Definitions, instance: dg.DagsterInstance, stage: Stage) -> StageResult:
    job = defs.resolve_job_def(stage.job)
    release_dead_runs(instance)
    tags = {STAGE_TAG: stage.label, PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), **launch_tags()}
    if stage.range:
        tags |= {"dagster/asset_partition_range_start": stage.range[0],
                 "dagster/asset_partition_range_end": stage.range[1]}
    started = time.time()
    result = execute_as_served(job, instance, tags, QUIET_LOGS, stage.assets)
    if stage.range and stage.assets:        # a range of partitions: also a backfill in the UI
        record_backfill(defs, instance, result.run_id, stage.assets, *stage.range, started, stage.label)
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        if failures and failures[0].step_failure_data and failures[0].step_failure_data.error:
            error = f"{failures[0].step_key}: {error_message(failures[0].step_failure_data.error)}"
        else:
            error = "the run failed; see `shuku ui` for its logs"
    return StageResult(stage, result.run_id, result.success, error)


def feeds_named(names: list[str] | None) -> list[Feed]:
    if not names:
        return list(FEEDS)
    chosen = []
    for name in names:
        matches = [f for f in FEEDS if name in (f.name, f.source)]
        if not matches:
            raise ValueError(f"unknown feed {name!r}; choose from {', '.join(sorted(f.name for f in FEEDS))} "
                             f"or a source ({', '.join(sorted({f.source for f in FEEDS}))}).")
        chosen += [m for m in matches if m not in chosen]
    return chosen

