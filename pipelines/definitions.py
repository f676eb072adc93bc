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

from assets.eresources.harvest_asset import build_harvest_asset
from assets.feeds import FEEDS
from assets.marts_python import build_python_mart_assets
from assets.models.model_assets import build_model_assets
from assets.privacy_assets import privacy_assets
from assets.publish import role_databases
from assets.reference import build_reference_assets
from assets.resources import ShukuWarehouse
from assets.staging import build_staging_assets
from pipelines.alerts import alert_sensors
from pipelines.freshness import freshness_sensor
from pipelines.jobs import (DAILY_JOB, build_harvest_job, build_jobs, build_nightly_job, build_schedules, build_source_jobs,
                            retention_job)
from schemas.vocabulary import DAY
from warehouse.library import Library, load_library
from warehouse.settings import Settings


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
    assets = [*build_staging_assets(library), build_harvest_asset(library), *build_reference_assets(), *build_model_assets(),
              *build_python_mart_assets(), *privacy_assets, role_databases]
    jobs = build_jobs(library) + build_source_jobs() + [build_nightly_job(), build_harvest_job(), retention_job]
    executor = dg.multiprocess_executor if os.environ.get("SHUKU_EXECUTOR") == "multiprocess" else dg.in_process_executor
    return dg.Definitions(
        assets=assets, jobs=jobs, schedules=build_schedules(jobs, library),
        sensors=[landing_sensor(library), *alert_sensors(), freshness_sensor()],
        resources={"shuku": ShukuWarehouse(home=str(settings.home), library_config=str(settings.library_config))},
        executor=executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
