"""The consent registry ``meta.consent``: per reader, profiling and recommendations on or off.

Changes come from the ILS patron export (its ``profiling_consent`` column, which covers both
uses) and from ``shuku consent set``. The latest row per reader is the state in force. An
explicit choice recorded with ``shuku consent set`` stands until the export itself changes
the reader's answer: the export is compared with what the export said last, not with the
latest state. Basic service (loans, entry, searches) never depends on consent; only profiles
and recommendations do.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from schemas.model import contract_for
from warehouse.lake.views import compute_connection, has_data
from warehouse.privacy import append_rows, utc_now
from warehouse.settings import Settings

CONSENT_TABLE = "meta.consent"
FROM_EXPORT, FROM_CLI, FROM_ERASURE = "patron_export", "shuku consent set", "erasure"
# The state in force: each reader's latest change (tombstones carry no reader).
LATEST_SQL = """
select patron_pid, pid_key_version, profiling, recommendations, changed_at, source, changed_by
from meta.consent
where patron_pid is not null
qualify row_number() over (partition by patron_pid order by changed_at desc) = 1
"""


def _query(settings: Settings, sql: str, params: list | None = None) -> pl.DataFrame:
    tables = [CONSENT_TABLE] + (["staging.patron"] if "staging.patron" in sql else [])
    con = compute_connection(settings, tables)
    try:
        return con.sql(sql, params=params or None).pl()
    finally:
        con.close()


def latest(settings: Settings) -> pl.DataFrame:
    """One row per reader with a recorded choice: the state in force."""
    return _query(settings, LATEST_SQL)


def history(settings: Settings, pid: str) -> pl.DataFrame:
    """Every recorded change of one reader, oldest first."""
    return _query(settings, "select * from meta.consent where patron_pid = ? order by changed_at", [pid])


def state_of(settings: Settings, pid: str) -> dict | None:
    rows = _query(settings, f"select * from ({LATEST_SQL}) where patron_pid = ?", [pid]).to_dicts()
    return rows[0] if rows else None


def set_consent(settings: Settings, pid: str, key_version: int, *, profiling: bool | None,
                recommendations: bool | None, changed_by: str, now: dt.datetime | None = None) -> dict:
    """Record a reader's choice; an option left out keeps its current value. Returns the new state."""
    current = state_of(settings, pid) or {}
    row = {"patron_pid": pid, "pid_key_version": key_version,
           "profiling": current.get("profiling") if profiling is None else profiling,
           "recommendations": current.get("recommendations") if recommendations is None else recommendations,
           "changed_at": now or utc_now(), "source": FROM_CLI, "changed_by": changed_by, "erasure_hash": None}
    append_rows(settings, CONSENT_TABLE, [row], row["changed_at"])
    return row


def sync_from_patron_export(settings: Settings, now: dt.datetime | None = None) -> int:
    """Record the changes the loaded patron export (staging.patron) brings; returns rows recorded."""
    if not has_data(settings, contract_for("staging.patron")):
        return 0
    now = now or utc_now()
    changed = _query(settings, """
        with exported as (
            select patron_pid, pid_key_version, profiling_consent, source_file
            from staging.patron
            where patron_pid is not null and profiling_consent is not null
        ),
        last_export as (
            select patron_pid, profiling
            from meta.consent
            where source = 'patron_export' and patron_pid is not null
            qualify row_number() over (partition by patron_pid order by changed_at desc) = 1
        ),
        any_choice as (
            select distinct patron_pid from meta.consent where patron_pid is not null
        )
        select e.patron_pid, e.pid_key_version, e.profiling_consent, e.source_file
        from exported as e
        left join last_export as x on x.patron_pid = e.patron_pid
        left join any_choice as a on a.patron_pid = e.patron_pid
        where (x.patron_pid is null and a.patron_pid is null)
           or (x.patron_pid is not null and x.profiling is distinct from e.profiling_consent)
        order by e.patron_pid
    """)
    rows = [{"patron_pid": r["patron_pid"], "pid_key_version": r["pid_key_version"],
             "profiling": r["profiling_consent"], "recommendations": r["profiling_consent"],
             "changed_at": now, "source": FROM_EXPORT, "changed_by": r["source_file"], "erasure_hash": None}
            for r in changed.iter_rows(named=True)]
    append_rows(settings, CONSENT_TABLE, rows, now)
    return len(rows)


def counts(settings: Settings) -> dict[str, int]:
    """Readers with a recorded choice, and how many said yes or no to each use."""
    frame = latest(settings)
    result = {"readers": frame.height}
    for use in ("profiling", "recommendations"):
        values = frame.get_column(use)
        result[f"{use}_yes"] = int((values == True).sum())  # noqa: E712 - polars comparison
        result[f"{use}_no"] = int((values == False).sum())  # noqa: E712
    return result
