"""What `shuku status` and the demo summary show: runs, tables, freshness, quarantine, failing checks."""

from __future__ import annotations

import datetime as dt

from assets.ingest_log import EMPTY, NOT_YET, REJECTED, UNREADABLE, UNRECOGNISED
from assets.refusal import rejected_explanations
from pipelines.runner import dagster_instance
from quality.freshness import is_stale, library_today
from quality.report import failing_checks
from schemas.model import load_contracts
from schemas.vocabulary import DATA_LAYERS, QUARANTINE, STAGING
from warehouse.lake.views import compute_connection, has_data
from warehouse.settings import Settings


def latest_runs(settings: Settings, limit: int = 10) -> list[dict]:
    instance = dagster_instance(settings)
    rows = []
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        started = dt.datetime.fromtimestamp(record.start_time).strftime("%Y-%m-%d %H:%M:%S") if record.start_time else "-"
        rows.append({"run_id": run.run_id, "job": run.job_name, "status": run.status.value, "started": started,
                     "stage": run.tags.get("shuku/stage", "")})
    return rows


def table_status(settings: Settings) -> list[dict]:
    """Rows, newest partition and staleness for each staging/core/marts table; quarantine per source."""
    contracts = load_contracts()
    con = compute_connection(settings)
    today = library_today(settings)
    rows = []
    try:
        for name, contract in contracts.items():
            if contract.layer not in DATA_LAYERS:
                continue
            count = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] if has_data(settings, contract) else 0
            part = contract.partition_column
            newest = None
            if part is not None and count:
                newest = con.execute(f"SELECT max({part.name}) FROM {name}").fetchone()[0]
            stale = None
            if newest is not None and contract.freshness_days is not None:
                stale = is_stale(contract, newest, today)
            quarantined, reasons = None, ""
            if contract.layer == STAGING:
                source_q = [c for c in contracts.values() if c.layer == QUARANTINE]
                quarantined = 0
                pieces = []
                for q in source_q:
                    if not has_data(settings, q):
                        continue
                    for reason, n in con.execute(
                            f"SELECT reason, count(*) FROM {q.qualified_name} WHERE staging_table = ? "
                            "GROUP BY reason ORDER BY reason", [contract.table]).fetchall():
                        quarantined += n
                        pieces.append(f"{reason} {n}")
                reasons = ", ".join(pieces)
            rows.append({"table": name, "rows": count, "newest": str(newest) if newest else None,
                         "stale": stale, "quarantined": quarantined, "reasons": reasons})
    finally:
        con.close()
    return rows


def counter_exceptions(settings: Settings, limit: int = 20) -> list[dict]:
    """The COUNTER/SUSHI exceptions of the loaded reports, newest month first."""
    contract = load_contracts()["meta.counter_exceptions"]
    if not has_data(settings, contract):
        return []
    con = compute_connection(settings)
    try:
        rows = con.execute(
            "SELECT strftime(usage_month, '%Y-%m'), platform, report_id, code, severity, message "
            "FROM meta.counter_exceptions ORDER BY usage_month DESC, platform, report_id, code LIMIT ?",
            [limit]).fetchall()
    finally:
        con.close()
    return [dict(zip(("month", "platform", "report", "code", "severity", "message"), r)) for r in rows]


def quality_failures(settings: Settings) -> list[dict]:
    """Checks failing on their latest results (the same rows `shuku quality` shows), errors first."""
    return failing_checks(settings)


def retention_sweeps(settings: Settings, limit: int = 5) -> list[dict]:
    """The latest retention sweeps (meta.retention_log), newest first."""
    from warehouse.privacy.retention import recent_sweeps
    return recent_sweeps(settings, limit) if has_data(settings, load_contracts()["meta.retention_log"]) else []


# What a delivery not loaded means, for the librarian reading `shuku status`.
NOT_LOADED = {REJECTED: "refused: too many bad lines (shuku parse SOURCE FILE shows them)",
              UNRECOGNISED: "not understood as a file of its source (shuku parse SOURCE FILE)",
              EMPTY: "empty (no bytes, or a header and no rows): usually a failed export; ask for it again",
              UNREADABLE: "cannot be read (shuku parse counter FILE names why)",
              NOT_YET: "the platform said the usage is not ready yet (1010, 1011, 1020, 3031): deliver it again later"}


def refused_files(settings: Settings, limit: int = 20) -> list[dict]:
    """Landing files whose latest ingest did not load them (``NOT_LOADED``), newest first: the stored
    partitions do not hold them."""
    contract = load_contracts()["meta.ingest_log"]
    if not has_data(settings, contract):
        return []
    con = compute_connection(settings, ["meta.ingest_log"])
    try:
        rows = con.execute(
            "WITH latest AS (SELECT source_file, max(ingested_at) AS at FROM meta.ingest_log GROUP BY ALL) "
            "SELECT l.source_file, l.partition_key, l.file_status, sum(l.rows_read), sum(l.rows_quarantined), "
            "l.run_id, l.ingested_at FROM meta.ingest_log AS l JOIN latest "
            "ON latest.source_file = l.source_file AND latest.at = l.ingested_at "
            f"WHERE l.file_status IN ({', '.join('?' * len(NOT_LOADED))}) GROUP BY ALL "
            "ORDER BY l.ingested_at DESC, l.source_file LIMIT ?", [*NOT_LOADED, limit]).fetchall()
    finally:
        con.close()
    found = [dict(zip(("file", "partition", "status", "read", "quarantined", "run_id", "at"), r)) for r in rows]
    explained = rejected_explanations(settings, [f for f in found if f["status"] == REJECTED])
    return [{**f, "meaning": explained.get(f["file"], NOT_LOADED[f["status"]])} for f in found]
