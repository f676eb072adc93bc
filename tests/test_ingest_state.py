"""The record of each landing file's latest ingest (``ingest_state.json``), kept as the ingest log is
written, against the log itself replayed: the same files, partitions, statuses and line counts,
and `shuku status`'s deliveries not loaded the same from either."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from assets.feeds import feed_named
from assets.ingest_log import EMPTY, LOADED, REJECTED, FileLog, write_ingest_log
from assets.ingest_state import apply_write, read_ingest_state, replayed, state_path
from pipelines.status import refused_files
from tests.published import copied_home, week_home


@pytest.fixture(scope="module")
def week(tmp_path_factory, library):
    return week_home(tmp_path_factory, library).settings


def _log(settings, key: str, run_id: str, files: dict[str, str]) -> None:
    """The ingest log's own writer, as one run's ingest of ``files`` (name → status) into ``key`` writes it."""
    feed = feed_named("turnstile")
    logs = []
    for name, status in files.items():
        read = Counter({t: 0 if status == EMPTY else 6 for t in feed.tables})
        logs.append(FileLog(name, "0" * 64, 120, "turnstile", "utf-8", rows_read=read,
                            rows_quarantined=read if status == REJECTED else Counter(), file_status=status))
    write_ingest_log(settings, feed, key, logs, run_id)


def test_the_record_kept_during_the_runs_is_the_log_replayed(week):
    kept = read_ingest_state(week)
    assert kept is not None and kept == replayed(week)
    assert {w["status"] for entry in kept.values() for w in entry["writes"]} == {LOADED}


def test_status_lists_the_same_deliveries_from_the_record_as_from_the_log(week, tmp_path):
    home = copied_home(week, tmp_path / "home")
    assert refused_files(home) == []
    day = "2025-10-26"
    _log(home, day, "run-a", {f"gates/turnstile_{day}.csv": REJECTED, f"gates/turnstile_{day}b.csv": EMPTY})
    _log(home, day, "run-b", {f"gates/turnstile_{day}b.csv": LOADED})         # delivered again, loaded
    from_record = refused_files(home)
    assert [(r["file"], r["status"], r["read"], r["quarantined"]) for r in from_record] == \
        [(f"gates/turnstile_{day}.csv", REJECTED, 6, 6)]
    assert read_ingest_state(home) == replayed(home)
    state_path(home).unlink()
    assert refused_files(home) == from_record


def test_a_later_write_replaces_a_files_entry_and_one_at_the_same_time_adds_its_partition():
    def row(partition, status, at, read=10, quarantined=0):
        return {"source_file": "gates/turnstile_2025-09-01.csv", "partition_key": partition, "file_status": status,
                "rows_read": read, "rows_quarantined": quarantined, "run_id": "r", "ingested_at": at}

    files: dict[str, dict] = {}
    first, later = dt.datetime(2025, 9, 2).isoformat(), dt.datetime(2025, 9, 3).isoformat()
    apply_write(files, [row("2025-09-01", "rejected", first, 6, 6), row("2025-09-01", "rejected", first, 4, 4)])
    [entry] = files.values()
    assert [(w["status"], w["read"], w["quarantined"]) for w in entry["writes"]] == [("rejected", 10, 10)]
    apply_write(files, [row("2025-09-01", LOADED, later)])
    apply_write(files, [row("2025-09-02", LOADED, later)])
    apply_write(files, [row("2025-09-01", "rejected", first)])                  # older: changes nothing
    assert [(w["partition"], w["status"]) for w in files["gates/turnstile_2025-09-01.csv"]["writes"]] == \
        [("2025-09-01", LOADED), ("2025-09-02", LOADED)]
