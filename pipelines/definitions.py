"""Everything Dagster loads, wired in one place.

`dagster dev -m pipelines.definitions` (or `shuku ui`) loads `defs`. The home folder and
the library config are read when Dagster loads the code location, not when a module is
imported, so tests build their own definitions for their own home folder.
"""

from __future__ import annotations

import hashlib
import json
import os

import dagster as dg

from assets.feeds import FEEDS
from assets.marts_python import build_python_mart_assets
from assets.models.model_assets import build_model_assets
from assets.privacy_assets import CONSENT_KEY, SWEEP_KEY, privacy_assets, retention_job, retention_schedule
from assets.publish import role_databases
from assets.reference import build_reference_assets
from assets.resources import ShukuWarehouse
from assets.staging import build_staging_assets
from pipelines.freshness import freshness_sensor
from schemas.vocabulary import DAY, MONTH, SOURCES
from warehouse.library import Library, load_library
from warehouse.settings import Settings

DAILY_JOB = "daily_ingest"
MONTHLY_JOB = "monthly_ingest"
SNAPSHOT_JOB = "snapshot_ingest"
MODELS_JOB = "build_models"
NIGHTLY_JOB = "nightly_refresh"
COUNTER_SOURCE = "counter"


def source_job_name(source: str) -> str:
    return f"load_{source}"


def _staging_keys(partitioning: str | None) -> list[dg.AssetKey]:
    return [dg.AssetKey(["staging", t]) for f in FEEDS if f.partitioning == partitioning for t in f.tables]


def build_jobs(library: Library) -> list:
    return [
        dg.define_asset_job(DAILY_JOB, selection=dg.AssetSelection.assets(*_staging_keys(DAY)),
                            description="Load one day (or a range of days) of the daily feeds."),
        dg.define_asset_job(MONTHLY_JOB, selection=dg.AssetSelection.assets(*_staging_keys(MONTH)),
                            description="Load a month of COUNTER reports."),
        dg.define_asset_job(SNAPSHOT_JOB, selection=dg.AssetSelection.assets(*_staging_keys(None)),
                            description="Load the latest patron and catalogue exports."),
        dg.define_asset_job(MODELS_JOB, selection=dg.AssetSelection.key_prefixes(["core"], ["marts"], ["access"])
                            | dg.AssetSelection.assets(CONSENT_KEY),
                            description="Rebuild the core tables and the marts from staging, then publish "
                                        "the per-role databases."),
    ]


def build_source_jobs() -> list:
    """One job per source: its staging tables (a day, a month or the latest snapshot), then every
    table built from them, so a re-delivered file is one run away from the marts."""
    jobs = []
    for source in SOURCES:
        feeds = [f for f in FEEDS if f.source == source]
        keys = [dg.AssetKey(["staging", t]) for f in feeds for t in f.tables]
        jobs.append(dg.define_asset_job(
            source_job_name(source), selection=dg.AssetSelection.assets(*keys).downstream(),
            description=f"Load the {source} landing files ({'; '.join(f.description for f in feeds)}), "
                        "then rebuild the core tables, marts and role databases built from them."))
    return jobs


def build_nightly_job():
    """Every asset but the monthly COUNTER load (a run holds one kind of partition) and the retention sweep
    (its own schedule): the daily feeds for a day, the snapshots, then core, marts and role databases."""
    return dg.define_asset_job(
        NIGHTLY_JOB, selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*_staging_keys(MONTH), SWEEP_KEY),
        description="Load a day of every daily feed and the latest snapshots, then rebuild everything built "
                    "from them (COUNTER months have their own job, load_counter).")


def build_schedules(jobs: list, library: Library) -> list[dg.ScheduleDefinition]:
    """The schedules, all in the library's time zone (the partitions' time zone, from the library config)."""
    by_name = {j.name: j for j in jobs}
    return [
        dg.build_schedule_from_partitioned_job(
            by_name[NIGHTLY_JOB], hour_of_day=2, minute_of_hour=0, name="nightly_ingest",
            description="Every night at 02:00 library time, load the day before and rebuild what depends on it."),
        # COUNTER R5 reports are due within 28 days after the month they cover.
        dg.build_schedule_from_partitioned_job(
            by_name[source_job_name(COUNTER_SOURCE)], day_of_month=28, hour_of_day=4, minute_of_hour=0,
            name="monthly_counter",
            description="On the 28th at 04:00 library time, load the previous month's COUNTER reports."),
        retention_schedule(library.timezone),
    ]


def landing_sensor(library: Library) -> dg.SensorDefinition:
    """Notices new or changed landing files and asks for the partitions they belong to."""

    @dg.sensor(name="landing_sensor", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
               description="Requests a run for each partition whose landing files are new or changed.",
               job_name=DAILY_JOB)
    def sensor(context, shuku: ShukuWarehouse):
        settings = shuku.settings()
        seen = json.loads(context.cursor) if context.cursor else {}
        now_seen, requests, changes = {}, {}, {}
        for feed in FEEDS:
            for path in feed.files(settings.landing):
                stat = path.stat()
                stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
                relative = str(path.relative_to(settings.landing))
                now_seen[relative] = stamp
                if seen.get(relative) != stamp and feed.partitioning == DAY:
                    key = feed.key_of(path)
                    requests.setdefault(key, set()).update(("staging", t) for t in feed.tables)
                    changes.setdefault(key, []).append(f"{relative}@{stamp}")
        for key, assets in sorted(requests.items()):
            # The same change never asks twice; a later change to the same day asks again.
            change = hashlib.sha256("\n".join(sorted(changes[key])).encode()).hexdigest()[:16]
            yield dg.RunRequest(run_key=f"landing-{key}-{change}", partition_key=key,
                                asset_selection=[dg.AssetKey(list(a)) for a in sorted(assets)])
        context.update_cursor(json.dumps(now_seen))

    return sensor


def build_definitions(settings: Settings | None = None, library: Library | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    library = library or load_library(settings.library_config)
    assets = [*build_staging_assets(library), *build_reference_assets(), *build_model_assets(),
              *build_python_mart_assets(), *privacy_assets, role_databases]
    jobs = build_jobs(library) + build_source_jobs() + [build_nightly_job(), retention_job]
    from pipelines.alerts import alert_sensors  # here: pipelines.alerts imports the runner, which imports this module

    executor = dg.multiprocess_executor if os.environ.get("SHUKU_EXECUTOR") == "multiprocess" else dg.in_process_executor
    return dg.Definitions(
        assets=assets, jobs=jobs, schedules=build_schedules(jobs, library), sensors=[landing_sensor(library), *alert_sensors(), freshness_sensor()],
        resources={"shuku": ShukuWarehouse(home=str(settings.home), library_config=str(settings.library_config))},
        executor=executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
