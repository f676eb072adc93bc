"""The lineage events as tables an auditor can query: meta.lineage_runs, meta.lineage_datasets
and meta.lineage_column_edges, rebuilt from ``lineage/events.jsonl`` (the file is the record;
the tables are a view of it and can be rebuilt at any time)."""

from __future__ import annotations

import datetime as dt
import json
import logging

import polars as pl

from lineage.transport import events_path
from warehouse.contracts import conform, contract_for
from warehouse.settings import Settings
from warehouse.storage import refresh_warehouse_views, write_table

log = logging.getLogger("shuku.lineage")

TABLES = ("meta.lineage_runs", "meta.lineage_datasets", "meta.lineage_column_edges")
FINAL_STATES = ("COMPLETE", "FAIL", "ABORT")


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


def _rows(events: list[dict]) -> dict[str, list[dict]]:
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
        for direction, items, extra in (("input", event.get("inputs") or [], "inputFacets"),
                                        ("output", event.get("outputs") or [], "outputFacets")):
            for item in items:
                facets = item.get("facets") or {}
                stats = (item.get(extra) or {}).get(f"{direction}Statistics") or {}
                datasets.append({
                    "run_id": run_id, "direction": direction, "namespace": item["namespace"], "name": item["name"],
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
                                "input_namespace": field["namespace"], "input_dataset": field["name"],
                                "input_column": field["field"], "type": transformation.get("type", "DIRECT"),
                                "subtype": transformation.get("subtype") or "TRANSFORMATION",
                                "description": transformation.get("description"),
                                "masking": bool(transformation.get("masking"))})
    return {"meta.lineage_runs": list(runs.values()), "meta.lineage_datasets": datasets,
            "meta.lineage_column_edges": edges}


def load_events(settings: Settings, refresh_views: bool = True) -> dict[str, int]:
    """Rebuild the meta.lineage_* Parquet tables from the events file; returns rows per table."""
    rows = _rows(read_events(settings))
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
            refresh_warehouse_views(settings, contracts, attempts=4)
        except RuntimeError as exc:
            # The Parquet files are written; only warehouse.duckdb's views wait for the next load.
            log.warning("lineage tables written, views not refreshed: %s", exc)
    return counts
