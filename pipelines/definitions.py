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

from assets.feeds import DAY, FEEDS, MONTH
from assets.marts_python import build_python_mart_assets
from assets.models import build_model_assets
from assets.privacy_assets import CONSENT_KEY, privacy_assets, retention_job, retention_schedule
from assets.publish import role_databases
from assets.reference import build_reference_assets
from assets.resources import ShukuWarehouse
from assets.staging import build_staging_assets
from warehouse.library import Library, load_library
from warehouse.settings import Settings

DAILY_JOB = "daily_ingest"
MONTHLY_JOB = "monthly_ingest"
SNAPSHOT_JOB = "snapshot_ingest"
MODELS_JOB = "build_models"


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
    jobs = build_jobs(library) + [retention_job]
    daily_job = next(j for j in jobs if j.name == DAILY_JOB)
    nightly = dg.build_schedule_from_partitioned_job(
        daily_job, hour_of_day=2, minute_of_hour=0, name="nightly_ingest",
        description="Every night at 02:00 library time, load the day before.")
    executor = dg.multiprocess_executor if os.environ.get("SHUKU_EXECUTOR") == "multiprocess" else dg.in_process_executor
    return dg.Definitions(
        assets=assets, jobs=jobs, schedules=[nightly, retention_schedule], sensors=[landing_sensor(library)],
        resources={"shuku": ShukuWarehouse(home=str(settings.home), library_config=str(settings.library_config))},
        executor=executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
