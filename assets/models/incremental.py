"""Building a SQL model's table, and only when its inputs changed.

A model runs on an in-memory DuckDB whose views read the lake, so it never holds
`warehouse.duckdb`; its result is checked against the contract before the Parquet file is
replaced.

A model whose inputs are as they were when it last wrote its table (the same SQL and contract,
every upstream table's files unchanged, its own file the one it wrote) is not run again: a
nightly run leaves the catalogue's dimensions alone when the catalogue export did not change.
Its checks still run on the table as it stands.

A model whose contract partitions it by day (the facts of daily logs) is built day by day: a
day is rebuilt when the partitions it is computed from (that day of its day-partitioned
upstream tables, and the ``partitionLookbackDays`` before it) or anything else it reads
changed. The SQL is the same either way: the upstream views hold only the days needed, and the
result is written to the changed days' partitions. A nightly run computes one day, not a year.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from assets.models.sql_model import SqlModel, check_result_columns
from quality.results import partition_label
from schemas.model import contract_for
from warehouse.lake.files import write_text_atomic
from warehouse.lake.partitions import (files_digest, parquet_rows, partition_stamps, remove_partitions, remove_table,
                                       write_query_partitions, write_query_table)
from warehouse.lake.paths import model_record, partition_files, table_dir, table_file
from warehouse.lake.views import compute_connection, view_sql
from warehouse.settings import Settings


def inputs_record_path(settings: Settings, model: SqlModel) -> Path:
    return model_record(settings, model.qualified_name)


def inputs_digest(settings: Settings, model: SqlModel, leaving_out: tuple[str, ...] = ()) -> str:
    """What the model's table is computed from: its SQL, its contract, its upstream tables' files
    (but those ``leaving_out``: a day-partitioned model follows those day by day)."""
    contract = contract_for(model.qualified_name)
    parts = [model.sql, contract.path.read_text(encoding="utf-8")]
    parts += [f"{name}:{files_digest(settings, contract_for(name))}" for name in model.upstream()
              if name not in leaving_out]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _last_record(settings: Settings, model: SqlModel) -> dict:
    """What the model's last build recorded (empty when there is none or it cannot be read)."""
    try:
        record = json.loads(inputs_record_path(settings, model).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def is_up_to_date(settings: Settings, model: SqlModel, digest: str) -> bool:
    """The table was written by the model from inputs with ``digest``, and is still that file."""
    contract = contract_for(model.qualified_name)
    record = _last_record(settings, model)
    return (record.get("inputs") == digest
            and table_file(settings, contract).exists()
            and record.get("output") == files_digest(settings, contract))


def record_inputs(settings: Settings, model: SqlModel, digest: str) -> None:
    record = {"inputs": digest, "output": files_digest(settings, contract_for(model.qualified_name))}
    write_text_atomic(inputs_record_path(settings, model), json.dumps(record))


@dataclass
class DayPlan:
    """What a day-partitioned model must do: the days to rebuild (and the partitions of its
    day-partitioned upstream tables they read), the days whose inputs are gone, and the digest of
    every day's inputs to record."""

    rebuild: list[str]
    remove: list[str]
    reads: list[str]
    digests: dict[str, str]
    drivers: list[str]


def plan_days(settings: Settings, model: SqlModel) -> DayPlan:
    """Compare each day's inputs with those recorded at the last build (see the module's notes)."""
    contract = contract_for(model.qualified_name)
    upstream = [contract_for(name) for name in model.upstream()]
    drivers = [c for c in upstream if c.partition_column is not None and c.partitioning == contract.partitioning]
    common = inputs_digest(settings, model, leaving_out=tuple(c.qualified_name for c in drivers))
    stamps = {c.qualified_name: partition_stamps(settings, c) for c in drivers}
    days = sorted({day for found in stamps.values() for day in found})
    back = contract.lookback_days

    def window(day: str) -> list[str]:
        first = dt.date.fromisoformat(day)
        return [(first - dt.timedelta(days=n)).isoformat() for n in range(back, -1, -1)]

    digests = {day: hashlib.sha256(json.dumps([common, [[stamps[name].get(d) for d in window(day)]
                                                        for name in sorted(stamps)]]).encode()).hexdigest()
               for day in days}
    record = _last_record(settings, model)
    seen, written = record.get("days"), record.get("outputs")
    if not isinstance(seen, dict) or not isinstance(written, dict):
        seen, written = {}, {}     # no record, or one of an unpartitioned build: every day is rebuilt
    outputs = partition_stamps(settings, contract)
    rebuild = [day for day in days if seen.get(day) != digests[day] or written.get(day) != outputs.get(day)]
    remove = sorted(set(outputs) - set(days))
    reads = sorted({d for day in rebuild for d in window(day)})
    return DayPlan(rebuild, remove, reads, digests, [c.qualified_name for c in drivers])


def build_days(settings: Settings, model: SqlModel, plan: DayPlan) -> None:
    """Rebuild the planned days of a day-partitioned model and record what each day was built from."""
    contract = contract_for(model.qualified_name)
    whole = table_file(settings, contract)
    if whole.exists():
        # The table's file from before it was partitioned (its record has no days: all are rebuilt).
        remove_table(settings, contract)
    if plan.rebuild:
        con = compute_connection(settings, [n for n in model.upstream() if n not in plan.drivers])
        try:
            for name in plan.drivers:
                upstream = contract_for(name)
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {upstream.layer}")
                con.execute(view_sql(settings, upstream, plan.reads))
            check_result_columns(con, model)
            write_query_partitions(settings, contract, con, model.sql, plan.rebuild)
        finally:
            con.close()
    if plan.remove:
        remove_partitions(settings, contract, plan.remove)
    record = {"days": plan.digests, "outputs": partition_stamps(settings, contract)}
    write_text_atomic(inputs_record_path(settings, model), json.dumps(record))


@dataclass
class Built:
    """What building a model did: whether it wrote anything, where the table is and its size, the
    partitions to check (None: the whole table) and what to show in the materialisation."""

    rebuilt: bool
    path: Path
    rows: int
    bytes: int
    files: int
    checked: list[str] | None
    metadata: dict


def build_model(settings: Settings, model: SqlModel, force: bool = False) -> Built:
    """Build a model's table from its SQL, unless its inputs are as they were (see the module's
    notes); ``force`` rebuilds an unpartitioned table whatever its record says (a day-partitioned
    one rebuilds every day whose inputs or output changed, which is what an erasure touched)."""
    contract = contract_for(model.qualified_name)
    if contract.partition_column is not None:
        plan = plan_days(settings, model)
        build_days(settings, model, plan)
        folder = table_dir(settings, contract)
        files = list(partition_files(settings, contract).values())
        # The days rebuilt are checked; a table kept as it is has its newest day checked.
        checked = plan.rebuild or sorted(partition_stamps(settings, contract))[-1:]
        return Built(bool(plan.rebuild or plan.remove), folder, sum(parquet_rows(f) for f in files),
                     sum(f.stat().st_size for f in files), len(files), checked,
                     {"days_rebuilt": len(plan.rebuild), "days_removed": len(plan.remove),
                      "days_checked": dg.MetadataValue.text(partition_label(checked) if checked else "none")})
    digest = inputs_digest(settings, model)
    rebuilt = force or not is_up_to_date(settings, model, digest)
    path = table_file(settings, contract)
    if rebuilt:
        con = compute_connection(settings, model.upstream())
        try:
            check_result_columns(con, model)
            path = write_query_table(settings, contract, con, model.sql)
        finally:
            con.close()
        record_inputs(settings, model, digest)
    return Built(rebuilt, path, parquet_rows(path), path.stat().st_size, 1, None, {})
