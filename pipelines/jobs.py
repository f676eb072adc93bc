"""The jobs and their schedules: what one run loads and rebuilds, and when it runs.

Job names live here alone; the runner, the CLI and the definitions take them from this module.
"""

from __future__ import annotations

import dagster as dg

from assets.eresources.harvest_asset import HARVEST_KEY
from assets.feeds import FEEDS
from assets.privacy_assets import CONSENT_KEY, SWEEP_KEY
from schemas.vocabulary import DAY, MONTH, SOURCES
from warehouse.library import Library

DAILY_JOB = "daily_ingest"
MONTHLY_JOB = "monthly_ingest"
SNAPSHOT_JOB = "snapshot_ingest"
MODELS_JOB = "build_models"
NIGHTLY_JOB = "nightly_refresh"
RETENTION_JOB = "retention_sweep"
HARVEST_JOB = "harvest_counter"
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


def build_harvest_job():
    """The COUNTER harvest of a month, then the load of what it landed and everything built from it."""
    return dg.define_asset_job(
        HARVEST_JOB, selection=dg.AssetSelection.assets(HARVEST_KEY).downstream(),
        description="Harvest a month of COUNTER reports over COUNTER_SUSHI (counter.platforms in the library "
                    "config), load them, then rebuild the core tables, marts and role databases built from them.")


def build_nightly_job():
    """Every asset but the monthly COUNTER load (a run holds one kind of partition) and the retention sweep
    (its own schedule): the daily feeds for a day, the snapshots, then core, marts and role databases."""
    return dg.define_asset_job(
        NIGHTLY_JOB, selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*_staging_keys(MONTH), SWEEP_KEY, HARVEST_KEY),
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
        # Report providers must have a month's reports ready by the 28th of the month after.
        dg.build_schedule_from_partitioned_job(
            by_name[HARVEST_JOB], day_of_month=28, hour_of_day=3, minute_of_hour=0, name="monthly_harvest",
            description="On the 28th at 03:00 library time, harvest the previous month's COUNTER reports from "
                        "every configured platform, then load them and rebuild what reads them."),
        retention_schedule(library.timezone),
    ]


retention_job = dg.define_asset_job(RETENTION_JOB, selection=dg.AssetSelection.assets(SWEEP_KEY),
                                    description="Enforce retention: landing files and reader ids past their "
                                                "contract's retention.")


def retention_schedule(timezone: str) -> dg.ScheduleDefinition:
    """The daily sweep at 03:30 in the library's time zone, after the nightly ingest."""
    return dg.ScheduleDefinition(name="daily_retention_sweep", job=retention_job, cron_schedule="30 3 * * *",
                                 execution_timezone=timezone,
                                 description="Every day at 03:30 library time, after the nightly ingest.")
