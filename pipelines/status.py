"""What `shuku status` and the demo summary show: runs, tables, freshness, quarantine, failing checks."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from assets.ingest_log import EMPTY, NOT_YET, REJECTED, UNREADABLE, UNRECOGNISED
from assets.ingest_state import latest_writes
from assets.refusal import rejected_explanations
from quality import check_state
from quality.report import failing_checks
from schemas import CONTRACTS_DIR
from schemas.model import contract_for
from schemas.vocabulary import DATA_LAYERS, QUARANTINE, STAGING
from warehouse.lake.table_state import read_states, table_entry
from warehouse.lake.paths import data_files
from warehouse.lake.views import compute_connection, files_connection
from warehouse.library import load_library
from warehouse.settings import Settings


def _runs_db(settings: Settings) -> Path | None:
    """Dagster's SQLite run storage of the home, when the instance keeps its runs there (the
    default; dagster.yaml's PostgreSQL block, when uncommented, keeps them elsewhere)."""
    db = settings.dagster_home / "history" / "runs.db"
    config = settings.dagster_home / "dagster.yaml"
    try:
        configured = any(line.startswith("run_storage:") for line in config.read_text(encoding="utf-8").splitlines())
    except OSError:
        configured = False
    return db if db.exists() and not configured else None


def latest_runs(settings: Settings, limit: int = 10) -> list[dict]:
    """The latest runs, newest first: read from the run storage's SQLite file when it is one (a
    query of a small table, where starting Dagster to ask it takes seconds), else through Dagster."""
    if (db := _runs_db(settings)) is not None:
        try:
            con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
            try:
                found = con.execute(
                    "SELECT r.run_id, r.pipeline_name, r.status, r.start_time, "
                    "(SELECT value FROM run_tags AS t WHERE t.run_id = r.run_id AND t.key = 'shuku/stage') "
                    "FROM runs AS r ORDER BY r.id DESC LIMIT ?", [limit]).fetchall()
            finally:
                con.close()
            return [_run_row(*r) for r in found]
        except sqlite3.Error:
            pass                                   # a storage Dagster changed: ask Dagster itself
    from pipelines.runner import dagster_instance
    instance = dagster_instance(settings)
    return [_run_row(r.dagster_run.run_id, r.dagster_run.job_name, r.dagster_run.status.value, r.start_time,
                     r.dagster_run.tags.get("shuku/stage")) for r in instance.get_run_records(limit=limit)]


def _run_row(run_id: str, job: str, status: str, start_time: float | None, stage: str | None) -> dict:
    started = dt.datetime.fromtimestamp(start_time).strftime("%Y-%m-%d %H:%M:%S") if start_time else "-"
    return {"run_id": run_id, "job": job, "status": status, "started": started, "stage": stage or ""}


def _states(settings: Settings) -> dict[str, dict]:
    """Each table's entry of the table-state record; tables it lacks (an older home, a table added
    since) are read from the lake."""
    states = read_states(settings) or {}
    names = [f"{path.parent.name}.{path.name.removesuffix('.odcs.yaml')}" for layer in (*DATA_LAYERS, QUARANTINE)
             for path in sorted((CONTRACTS_DIR / layer).glob("*.odcs.yaml"))]
    if missing := [n for n in names if n not in states]:
        con = compute_connection(settings, [])
        try:
            states |= {n: table_entry(settings, contract_for(n), con) for n in missing}
        finally:
            con.close()
    return {n: states[n] for n in names}


def table_status(settings: Settings, failing: list[dict] | None = None) -> list[dict]:
    """One row per staging/core/marts table: rows, newest partition, staleness, quarantined lines
    (by reason) and the checks failing on it (``failing``, as `failing_checks_once` gives them)."""
    states = _states(settings)
    today = dt.datetime.now(load_library(settings.library_config).tz).date()     # the library's today
    quarantined: dict[str, dict[str, int]] = {}
    for name, state in states.items():
        if state["layer"] == QUARANTINE:
            for table, reasons in state.get("quarantined", {}).items():
                for reason, n in reasons.items():
                    quarantined.setdefault(table, {})[reason] = quarantined.get(table, {}).get(reason, 0) + n
    checks: dict[str, int] = {}
    for check in failing or []:
        checks[check["table"]] = checks.get(check["table"], 0) + 1
    rows = []
    for name, state in states.items():
        if state["layer"] not in DATA_LAYERS:
            continue
        stale = None
        if state["covers_until"] and state["freshness_days"] is not None:
            stale = (today - dt.date.fromisoformat(state["covers_until"])).days > state["freshness_days"]
        reasons = quarantined.get(name, {}) if state["layer"] == STAGING else None
        rows.append({"table": name, "rows": state["rows"], "newest": state["newest"], "stale": stale,
                     "quarantined": None if reasons is None else sum(reasons.values()),
                     "quarantined_by_reason": reasons, "reasons": ", ".join(f"{r} {n}" for r, n in (reasons or {}).items()),
                     "checks_failing": checks.get(name, 0), "written_at": state["written_at"]})
    return rows


def _log_rows(settings: Settings, table: str, sql: str, params: list) -> list[tuple]:
    """The rows of a query over one small meta table, read from its files (none when it has none)."""
    if not _has_files(settings, table):
        return []
    con = files_connection(settings, [table])
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _has_files(settings: Settings, table: str) -> bool:
    return next(data_files(settings, table), None) is not None


def counter_exceptions(settings: Settings, limit: int = 20) -> list[dict]:
    """The COUNTER/SUSHI exceptions of the loaded reports, newest month first."""
    rows = _log_rows(settings, "meta.counter_exceptions",
                     "SELECT strftime(usage_month, '%Y-%m'), platform, report_id, code, severity, message "
                     "FROM meta.counter_exceptions ORDER BY usage_month DESC, platform, report_id, code LIMIT ?",
                     [limit])
    return [dict(zip(("month", "platform", "report", "code", "severity", "message"), r)) for r in rows]


def quality_failures(settings: Settings) -> list[dict]:
    """Checks failing on their latest results (the same rows `shuku quality` shows), errors first."""
    return failing_checks(settings)


def failing_checks_shown(settings: Settings) -> list[dict]:
    """Each failing check once per table (errors first), with the runs it failed in, for `shuku status`."""
    return check_state.failing_checks(settings)


def retention_sweeps(settings: Settings, limit: int = 5) -> list[dict]:
    """The latest retention sweeps (meta.retention_log), newest first."""
    from warehouse.privacy.retention import recent_sweeps
    return recent_sweeps(settings, limit) if _has_files(settings, "meta.retention_log") else []


# What a delivery not loaded means, for the librarian reading `shuku status`.
NOT_LOADED = {REJECTED: "refused: too many bad lines (shuku parse SOURCE FILE shows them)",
              UNRECOGNISED: "not understood as a file of its source (shuku parse SOURCE FILE)",
              EMPTY: "empty (no bytes, or a header and no rows): usually a failed export; ask for it again",
              UNREADABLE: "cannot be read (shuku parse counter FILE names why)",
              NOT_YET: "the platform said the usage is not ready yet (1010, 1011, 1020, 3031): deliver it again later"}


def refused_files(settings: Settings, limit: int = 20) -> list[dict]:
    """Landing files whose latest ingest did not load them (``NOT_LOADED``), newest first: the stored
    partitions do not hold them."""
    # From the record kept as the log is written (assets.ingest_state): the log itself is a file per
    # feed, partition and run, thousands in a year.
    found = [{**w, "at": dt.datetime.fromisoformat(w["at"])} for w in latest_writes(settings, tuple(NOT_LOADED))[:limit]]
    explained = rejected_explanations(settings, [f for f in found if f["status"] == REJECTED])
    return [{**f, "meaning": explained.get(f["file"], NOT_LOADED[f["status"]])} for f in found]
