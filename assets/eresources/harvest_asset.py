"""The COUNTER harvest as a Dagster asset: one month (or a range) of every configured platform's
reports harvested into landing and ``meta.counter_harvest``; the COUNTER staging asset waits for it,
so a run of both harvests a month and then loads it like a delivered file."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from assets.eresources.coverage import FAILED, FAILED_CELLS, HARVESTED, NO_USAGE, PARTIAL, PENDING, TABLE, failed_cells
from assets.eresources.harvest import harvest
from assets.partitions import monthly_partitions
from assets.table_asset import TableRun, Written, table_asset
from warehouse.library import Library

HARVEST_KEY = dg.AssetKey(TABLE.split("."))


def _harvest(run: TableRun) -> Written:
    months = [dt.date.fromisoformat(f"{key}-01") for key in run.partition_keys]
    if not run.library.counter.platforms or not months:
        run.context.log.info("no COUNTER platforms configured (counter.platforms): nothing to harvest")
        return Written(rows=0, published=False, metadata={"platforms": 0})
    done = harvest(run.settings, run.library, months, log=run.context.log.info)
    for note in done.notes:
        run.context.log.warning(note)
    counts = {s: done.count(s) for s in (HARVESTED, PARTIAL, NO_USAGE, PENDING, FAILED)}
    return Written(rows=len(done.cells), metadata={
        "platforms": len(run.library.counter.platforms), **{f"cells_{s}": n for s, n in counts.items()},
        "landed_files": dg.MetadataValue.json(done.landed[:200]), "notes": dg.MetadataValue.json(done.notes[:50]),
        FAILED_CELLS: dg.MetadataValue.json(failed_cells(done.cells)[:200])})


def build_harvest_asset(library: Library) -> dg.AssetsDefinition:
    return table_asset([TABLE], _harvest, name="harvest_counter_reports", group="counter", kinds={"python", "parquet"},
                       description="Harvest the month's COUNTER reports from every platform in counter.platforms "
                                   "over COUNTER_SUSHI into landing/counter, and record the coverage.",
                       source_path="assets.eresources.harvest:harvest", partitions_def=monthly_partitions(library),
                       pool="harvest_counter")
