"""meta.quality_results: one row per check per run, written as Parquet beside the lake.

Path: ``lake/meta/quality_results/<layer.table>/run-<run_id>.parquet`` (one file per table
and run, replaced atomically if the run checks the table again).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from quality.check_state import FIELDS, RESULTS_TABLE, record_run_results
from schemas.model import conform, contract_for
from warehouse.lake.files import write_parquet_atomic
from warehouse.lake.paths import run_file, table_dir
from warehouse.lake.views import refresh_warehouse_views
from warehouse.settings import Settings



@dataclass
class CheckOutcome:
    """The result of one check on what one run wrote; ``sample`` is pseudonymous text only."""

    table_name: str
    check_name: str
    expectation: str
    column_name: str | None
    severity: str
    success: bool
    observed_value: str
    unexpected_count: int
    sample: list[str]


def results_dir(settings: Settings) -> Path:
    return table_dir(settings, RESULTS_TABLE)


def results_path(settings: Settings, table_name: str, run_id: str) -> Path:
    return run_file(results_dir(settings) / table_name, run_id)


def partition_label(partition_keys: list[str] | None) -> str:
    """``all`` for a whole table, the key for one partition, ``first..last`` for a range."""
    if not partition_keys:
        return "all"
    keys = sorted(partition_keys)
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"


def write_results(settings: Settings, run_id: str, partition_keys: list[str] | None,
                  outcomes: list[CheckOutcome]) -> Path | None:
    """Write the outcomes of one table's checks in one run; returns the file written."""
    if not outcomes:
        return None
    contract = contract_for(RESULTS_TABLE)
    first_file = not results_dir(settings).exists()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frame = pl.DataFrame([{
        "run_id": run_id, "table_name": o.table_name, "partition_key": partition_label(partition_keys),
        "check_name": o.check_name, "expectation": o.expectation, "column_name": o.column_name,
        "severity": o.severity, "success": o.success, "observed_value": o.observed_value,
        "unexpected_count": o.unexpected_count, "unexpected_sample": json.dumps(o.sample, ensure_ascii=False),
        "checked_at": now} for o in outcomes], schema=contract.polars_schema())
    path = results_path(settings, outcomes[0].table_name, run_id)
    write_parquet_atomic(conform(frame, contract), path)
    record_run_results(settings, [{**row, "checked_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f")}
                                  for row in frame.select(FIELDS[:-1]).to_dicts()])
    if first_file:
        # The warehouse view was typed and empty until now; afterwards it globs every run's file.
        refresh_warehouse_views(settings, [contract])
    return path
