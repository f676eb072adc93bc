"""The auditor's trace: from a published figure (``layer.table.column``) back to the landing
files it came from, or forward to every figure it feeds, over the meta.lineage_* tables.

At each hop: the expression that made the column (the model's select expression, or the
parser's declared transformation), the latest run that wrote the table (the run that
wrote ``partition`` when one is given), its row count and its checks; at the end, the
landing files with checksum, size and arrival time from meta.ingest_log (or the config file,
or for a value written in a model, the model's SQL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import duckdb

from lineage.columns import sql_lineage
from lineage.store import LANDING_NAMESPACE, dataset_path
from schemas.model import ContractError, contract_for, load_contracts
from warehouse.lake.views import compute_connection
from warehouse.settings import REPO_ROOT, Settings


class TraceError(ValueError):
    """The figure to trace is unknown or has no lineage yet; the message says what to do."""


@dataclass
class Hop:
    dataset: str
    column: str
    expression: list[str]
    run_id: str | None
    dagster_run_id: str | None
    ended_at: str | None
    row_count: int | None
    checks: list[dict]
    inputs: list[dict] = field(default_factory=list)      # {dataset, column, type, subtype, description, masking}


def _records(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def partition_window(partition: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a day YYYY-MM-DD or a month YYYY-MM, at midnight UTC (as nominal times are)."""
    try:
        if len(partition) == 7:
            first = dt.date.fromisoformat(f"{partition}-01")
            after = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            first = dt.date.fromisoformat(partition)
            after = first + dt.timedelta(days=1)
    except ValueError:
        raise TraceError(f"--partition {partition!r}: give a day YYYY-MM-DD or a month YYYY-MM.") from None
    return dt.datetime.combine(first, dt.time()), dt.datetime.combine(after, dt.time())


def _days(start: dt.datetime, end: dt.datetime) -> set[dt.date]:
    return {(start + dt.timedelta(days=n)).date() for n in range((end - start).days)}


def in_window(key: str | None, window: tuple[dt.datetime, dt.datetime]) -> bool:
    """Whether an ingest partition key (a day, a month, ``all`` for a snapshot) meets the window."""
    if key in (None, "", "all"):
        return True
    try:
        start, end = partition_window(key)
    except TraceError:
        return True
    return start < window[1] and window[0] < end


class LineageGraph:
    """The completed runs that made every table as it is, and their column edges, read once.

    A table's runs are the newest one that wrote each of its days (a day-partitioned table loaded
    night by night has one per night), up to its newest whole-table run. With a ``partition``
    (a day or a month), only the days of it: a monthly figure built from daily tables follows
    every daily run of the month.
    """

    def __init__(self, settings: Settings, partition: str | None = None) -> None:
        self.settings = settings
        self.partition = partition
        self.window = partition_window(partition) if partition else None
        con = compute_connection(settings)
        try:
            runs = _records(con, """
                select r.*, d.name as dataset, d.row_count
                from meta.lineage_runs r join meta.lineage_datasets d using (run_id)
                where d.direction = 'output' and r.state = 'COMPLETE'
                order by r.ended_at desc""")
            self.runs: dict[str, list[dict]] = {}
            covered: dict[str, set[dt.date] | None] = {}      # None: a whole-table run covers every day
            days = _days(*self.window) if self.window else None
            for run in runs:
                dataset = run["dataset"]
                done = covered.setdefault(dataset, set())
                if done is None:
                    continue
                start, end = run["nominal_start_at"], run["nominal_end_at"]
                if start is None:
                    wrote = days
                else:
                    wrote = _days(start, end) if days is None else days & _days(start, end)
                if wrote is None:
                    covered[dataset] = None
                elif wrote - done:
                    done |= wrote
                else:
                    continue
                self.runs.setdefault(dataset, []).append(run)
            self.latest: dict[str, dict] = {dataset: kept[0] for dataset, kept in self.runs.items()}
            run_ids = sorted({r["run_id"] for kept in self.runs.values() for r in kept})
            self.edges = _records(con, "select * from meta.lineage_column_edges where list_contains(?, run_id)", [run_ids])
            self.inputs = _records(con, "select * from meta.lineage_datasets where direction = 'input' "
                                        "and list_contains(?, run_id)", [run_ids])
            self.ingest = _records(con, "select run_id, source_file, partition_key, file_sha256, file_bytes, "
                                        "ingested_at from meta.ingest_log")
            self.checks = self._checks(con)
        finally:
            con.close()

    @staticmethod
    def _checks(con: duckdb.DuckDBPyConnection) -> list[dict]:
        """meta.quality_results when it exists and has rows (another part of Shuku fills it)."""
        if "meta.quality_results" not in load_contracts():
            return []
        try:
            return _records(con, "select * from meta.quality_results")
        except duckdb.Error:
            return []

    def run_of(self, dataset: str) -> dict | None:
        return self.latest.get(dataset)

    def checks_of(self, dataset: str, column: str, run: dict | None) -> list[dict]:
        """The latest result of each check on the column or on the whole table, of the run if it has any."""
        mine = [c for c in self.checks if c.get("table_name") == dataset and c.get("column_name") in (None, "", column)]
        if run is not None:
            of_run = [c for c in mine if c.get("run_id") == run.get("parent_run_id")]
            mine = of_run or mine
        if self.partition:
            mine = [c for c in mine if c.get("partition_key") in (None, "", self.partition)] or mine
        latest: dict[str, dict] = {}
        for check in sorted(mine, key=lambda c: str(c.get("checked_at") or "")):
            latest[str(check.get("check_name"))] = check
        return [{"check": name, "success": c.get("success"), "observed": c.get("observed_value")}
                for name, c in sorted(latest.items())]

    def expression(self, dataset: str, column: str, run: dict | None) -> list[str]:
        """The select expressions that made the column (SQL models), outermost first."""
        if run and run.get("sql"):
            return list(sql_lineage(run["sql"]).expressions.get(column, ())) or [f"{column} (copied as is)"]
        descriptions = [e["description"] for e in self.edges
                        if run and e["run_id"] == run["run_id"] and e["output_column"] == column and e["description"]]
        return list(dict.fromkeys(descriptions))

    def hop(self, dataset: str, column: str) -> Hop:
        run = self.run_of(dataset)
        mine = {r["run_id"] for r in self.runs.get(dataset, ())}
        inputs: dict[tuple, dict] = {}
        for e in self.edges:
            if e["run_id"] in mine and e["output_dataset"] == dataset and e["output_column"] == column:
                inputs.setdefault((e["input_namespace"], e["input_dataset"], e["input_column"], e["type"], e["subtype"]), {
                    "namespace": e["input_namespace"], "dataset": e["input_dataset"], "column": e["input_column"],
                    "type": e["type"], "subtype": e["subtype"], "masking": e["masking"], "run_id": e["run_id"]})
        return Hop(dataset, column, self.expression(dataset, column, run),
                   run["run_id"] if run else None, run.get("parent_run_id") if run else None,
                   run["ended_at"].isoformat() if run and run.get("ended_at") else None,
                   run.get("row_count") if run else None, self.checks_of(dataset, column, run), list(inputs.values()))

    def landing_file(self, namespace: str, name: str, run_id: str) -> dict:
        """A file a run read: checksum and size from the run's event, arrival from meta.ingest_log.
        ``file`` is relative to the home for a file under it, ``path`` where it is now."""
        run = next((r for kept in self.runs.values() for r in kept if r["run_id"] == run_id), None)
        read = next((d for d in self.inputs if d["run_id"] == run_id and d["name"] == name), {})
        kind = "landing" if namespace == LANDING_NAMESPACE else "config"
        logged = [i for i in self.ingest if i["source_file"] == name] if kind == "landing" else []
        mine = [i for i in logged if run and i["run_id"] == run.get("parent_run_id")] or logged
        arrival = max((i["ingested_at"] for i in mine), default=None)
        path = dataset_path(self.settings, namespace, name)
        under_home = not namespace.partition("://")[2].startswith("/")
        return {"kind": kind, "namespace": namespace,
                "file": (PurePosixPath(namespace.partition("://")[2]) / name).as_posix() if under_home else name,
                "path": str(path), "present": bool(path and path.exists()), "run_id": run_id,
                "sha256": read.get("version"), "bytes": read.get("bytes"), "rows_read": read.get("row_count"),
                "partition_key": mine[-1]["partition_key"] if mine else None,
                "ingested_at": arrival.isoformat() if arrival else None}

    def constant_source(self, dataset: str, column: str) -> dict | None:
        """The model's SQL, when the column is a value written in it (a literal, a parameter, NULL).

        ``sha256`` is of the SQL that ran, as its event recorded it (a generated query has no file).
        """
        run = self.run_of(dataset)
        fields = sql_lineage(run["sql"]).fields if run and run.get("sql") else {}
        if column not in fields or fields[column]:
            return None
        sql = run["sql"].encode("utf-8")
        return {"kind": "sql", "namespace": f"file://{REPO_ROOT}", "file": run["source_path"], "dataset": dataset,
                "sha256": hashlib.sha256(sql).hexdigest(), "bytes": len(sql), "rows_read": None,
                "partition_key": None, "ingested_at": None}


def _check_target(target: str) -> tuple[str, str]:
    parts = target.split(".")
    if len(parts) != 3:
        raise TraceError(f"{target!r}: give SCHEMA.TABLE.COLUMN, e.g. marts.space_utilisation.occupancy_peak.")
    dataset, column = ".".join(parts[:2]), parts[2]
    try:
        contract = contract_for(dataset)
    except ContractError:
        raise TraceError(f"{target!r}: there is no table {dataset}; `shuku sql \"show all tables\"` lists them.") from None
    if column not in contract.column_names:
        raise TraceError(f"{target!r}: {dataset} has no column {column!r}; its columns are "
                         f"{', '.join(contract.column_names)}.")
    return dataset, column


def trace(settings: Settings, target: str, partition: str | None = None, downstream: bool = False,
          graph: LineageGraph | None = None) -> dict:
    """The hops from ``target`` up to the landing files (or down to every figure it feeds).

    ``graph``: one already read for the same partition, to trace many figures at one reading.
    """
    dataset, column = _check_target(target)
    graph = graph or LineageGraph(settings, partition)
    if graph.run_of(dataset) is None:
        raise TraceError(f"{dataset} has no completed run in the lineage"
                         + (f" for partition {partition}" if partition else "")
                         + "; run `shuku run` first (lineage is recorded by every run).")
    hops, files, seen = [], {}, set()
    queue = deque([(dataset, column)])
    while queue:
        current = queue.popleft()
        if current in seen:
            continue
        seen.add(current)
        hop = graph.hop(*current)
        if downstream:
            outputs: dict[tuple, dict] = {}
            for e in graph.edges:
                if e["input_dataset"] == current[0] and e["input_column"] == current[1] and e["output_column"]:
                    if any(r["run_id"] == e["run_id"] for r in graph.runs.get(e["output_dataset"], ())):
                        outputs.setdefault((e["output_dataset"], e["output_column"], e["type"], e["subtype"]), {
                            "dataset": e["output_dataset"], "column": e["output_column"],
                            "type": e["type"], "subtype": e["subtype"], "masking": e["masking"]})
                        queue.append((e["output_dataset"], e["output_column"]))
            hop.inputs = list(outputs.values())
        else:
            constant = None if hop.inputs else graph.constant_source(*current)
            if constant:
                files.setdefault((constant["namespace"], constant["file"], current[0]), constant)
            for item in hop.inputs:
                if item["namespace"].startswith("duckdb://"):
                    queue.append((item["dataset"], item["column"]))
                else:
                    key = (item["namespace"], item["dataset"])
                    files.setdefault(key, graph.landing_file(item["namespace"], item["dataset"], item["run_id"]))
        hops.append(hop)
    if graph.window:
        files = {k: f for k, f in files.items() if in_window(f["partition_key"], graph.window)}
        for hop in hops:     # a run over many days read files of other days too
            hop.inputs = [i for i in hop.inputs if i.get("namespace", "duckdb://").startswith("duckdb://")
                          or (i["namespace"], i["dataset"]) in files]
    return {"target": target, "partition": partition, "direction": "downstream" if downstream else "upstream",
            "hops": [h.__dict__ for h in hops], "landing_files": sorted(files.values(), key=lambda f: f["file"])}
