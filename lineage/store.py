"""The lineage events as tables an auditor can query: meta.lineage_runs, meta.lineage_datasets
and meta.lineage_column_edges, rebuilt from ``lineage/events.jsonl`` (the file is the record;
the tables are a view of it and can be rebuilt at any time).

An event names the home folder it was written in (``duckdb://<home>/warehouse.duckdb``,
``file://<home>/landing``); the tables name datasets relative to the home instead
(``duckdb://warehouse.duckdb``, ``file://landing``), so that a copied, moved or restored home
still finds its landing files. A relative namespace has no slash after ``//``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path, PurePosixPath

import polars as pl

from lineage.transport import events_path
from schemas.model import conform, contract_for
from warehouse.lake.partitions import write_table
from warehouse.lake.views import refresh_warehouse_views
from warehouse.settings import Settings

log = logging.getLogger("shuku.lineage")

TABLES = ("meta.lineage_runs", "meta.lineage_datasets", "meta.lineage_column_edges")
FINAL_STATES = ("COMPLETE", "FAIL", "ABORT")
# The namespace of landing files in the tables: the home's landing folder, wherever the home is.
LANDING_NAMESPACE = "file://landing"


def _event_homes(event: dict, current: Path) -> list[PurePosixPath]:
    """The home folders an event's paths may lie under: the current home, and the one the event
    was written in (the folder of its warehouse.duckdb, the parent of its landing folder)."""
    homes = [PurePosixPath(current)]
    items = (event.get("inputs") or []) + (event.get("outputs") or [])
    for namespace in {i.get("namespace", "") for i in items}:
        scheme, _, path = namespace.partition("://")
        if not path.startswith("/"):
            continue
        if scheme == "duckdb" and path.endswith("/warehouse.duckdb"):
            homes.append(PurePosixPath(path).parent)
        elif scheme == "file" and PurePosixPath(path).name == "landing":
            homes.append(PurePosixPath(path).parent)
    return list(dict.fromkeys(homes))


def home_namespace(namespace: str, homes: list[PurePosixPath]) -> str:
    """``namespace`` relative to the home it lies under (``file:///srv/lib/landing`` → ``file://landing``),
    else as it is (a file outside every home, such as the repository's config)."""
    scheme, sep, path = namespace.partition("://")
    if not sep or not path.startswith("/"):
        return namespace
    for home in homes:
        try:
            rest = PurePosixPath(path).relative_to(home).as_posix()
        except ValueError:
            continue
        return f"{scheme}://{rest}"
    return namespace


def dataset_path(settings: Settings, namespace: str, name: str) -> Path | None:
    """Where a file dataset of the tables is now: under the current home for a relative
    namespace, at its absolute path otherwise; None for a table."""
    scheme, _, path = namespace.partition("://")
    if scheme != "file":
        return None
    return (Path(path) if path.startswith("/") else settings.home / path) / name


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc).replace(tzinfo=None)


def read_events(settings: Settings) -> list[dict]:
    """Every event of the home folder's events file, in the order written (a torn last line is skipped)."""
    path = events_path(settings)
    if not path.exists():
        return []
    events = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s: line %d is not a JSON event (a write cut short?); skipped.", path, number)
    return events


def _rows(events: list[dict], home: Path) -> dict[str, list[dict]]:
    runs: dict[str, dict] = {}
    final: dict[str, dict] = {}
    for event in events:
        run_id = event["run"]["runId"]
        run_facets = event["run"].get("facets") or {}
        job_facets = event["job"].get("facets") or {}
        row = runs.setdefault(run_id, {"run_id": run_id, "job": event["job"]["name"], "state": "START"})
        state = event.get("eventType") or "OTHER"
        if state == "START":
            row["started_at"] = _time(event["eventTime"])
        elif state in FINAL_STATES:
            row["ended_at"] = _time(event["eventTime"])
            final[run_id] = event
        row["state"] = state if state != "START" or row["state"] == "START" else row["state"]
        row["parent_run_id"] = (run_facets.get("parent") or {}).get("run", {}).get("runId")
        nominal = run_facets.get("nominalTime") or {}
        row["nominal_start_at"] = _time(nominal.get("nominalStartTime"))
        row["nominal_end_at"] = _time(nominal.get("nominalEndTime"))
        row["error_message"] = (run_facets.get("errorMessage") or {}).get("message")
        row["source_path"] = (job_facets.get("sourceCodeLocation") or {}).get("path")
        row["sql"] = (job_facets.get("sql") or {}).get("query")
    datasets, edges = [], []
    for run_id, event in final.items():
        homes = _event_homes(event, home)
        for direction, items, extra in (("input", event.get("inputs") or [], "inputFacets"),
                                        ("output", event.get("outputs") or [], "outputFacets")):
            for item in items:
                facets = item.get("facets") or {}
                stats = (item.get(extra) or {}).get(f"{direction}Statistics") or {}
                datasets.append({
                    "run_id": run_id, "direction": direction, "namespace": home_namespace(item["namespace"], homes),
                    "name": item["name"],
                    "version": (facets.get("version") or {}).get("datasetVersion"),
                    "row_count": stats.get("rowCount"), "bytes": stats.get("size"), "file_count": stats.get("fileCount")})
                lineage = facets.get("columnLineage")
                if direction != "output" or not lineage:
                    continue
                parts = [(column, spec.get("inputFields") or []) for column, spec in (lineage.get("fields") or {}).items()]
                parts.append((None, lineage.get("dataset") or []))
                for column, inputs in parts:
                    for field in inputs:
                        for transformation in field.get("transformations") or [{}]:
                            edges.append({
                                "run_id": run_id, "output_dataset": item["name"], "output_column": column,
                                "input_namespace": home_namespace(field["namespace"], homes), "input_dataset": field["name"],
                                "input_column": field["field"], "type": transformation.get("type", "DIRECT"),
                                "subtype": transformation.get("subtype") or "TRANSFORMATION",
                                "description": transformation.get("description"),
                                "masking": bool(transformation.get("masking"))})
    return {"meta.lineage_runs": list(runs.values()), "meta.lineage_datasets": datasets,
            "meta.lineage_column_edges": edges}


def load_events(settings: Settings, refresh_views: bool = True) -> dict[str, int]:
    """Rebuild the meta.lineage_* Parquet tables from the events file; returns rows per table."""
    rows = _rows(read_events(settings), settings.home)
    counts = {}
    contracts = [contract_for(name) for name in TABLES]
    for contract in contracts:
        data = rows[contract.qualified_name]
        schema = contract.polars_schema()
        frame = pl.DataFrame([{c: r.get(c) for c in schema} for r in data], schema=schema, orient="row")
        write_table(settings, contract, conform(frame, contract))
        counts[contract.qualified_name] = frame.height
    if refresh_views:
        try:
            refresh_warehouse_views(settings, contracts)
        except RuntimeError as exc:
            # The Parquet files are written; only warehouse.duckdb's views wait for the next load.
            log.warning("lineage tables written, views not refreshed: %s", exc)
    return counts
