"""`shuku status` on a real published home: one row per table from the table-state record (the
lake's own counts), whole table names within 80 columns (COLUMNS honoured when piped), a
failing check once with the runs it failed in, and the JSON document's keys."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from quality.check_state import read_check_state, replayed
from quality.results import CheckOutcome, write_results
from schemas.model import load_contracts
from schemas.vocabulary import DATA_LAYERS
from tests.published import copied_home, published_home
from warehouse.lake.table_state import state_path
from warehouse.lake.views import compute_connection

TABLE_KEYS = {"table", "rows", "newest", "stale", "quarantined", "quarantined_by_reason", "checks_failing", "written_at"}
CHECK_KEYS = {"table", "check", "severity", "runs", "since", "partitions", "partition_range", "observed", "unexpected"}


@pytest.fixture
def home(tmp_path, tmp_path_factory, library, monkeypatch):
    settings = copied_home(published_home(tmp_path_factory, library), tmp_path / "home")
    monkeypatch.setenv("SHUKU_HOME", str(settings.home))
    monkeypatch.delenv("COLUMNS", raising=False)
    return settings


def _status(*args: str, columns: str | None = None):
    result = CliRunner().invoke(main, ["status", *args], env={"COLUMNS": columns} if columns else None)
    assert result.exit_code in (0, 1), result.output
    return result


def _names() -> list[str]:
    return [n for n, c in load_contracts().items() if c.layer in DATA_LAYERS]


def _fail(settings, run_id: str, key: str) -> None:
    write_results(settings, run_id, [key], [CheckOutcome(
        "staging.gate_event", "row_count_within_limit", "expect_table_row_count_to_be_between", None, "warn",
        False, f"{run_id}: 9 rows", 9, [])])


def test_piped_status_fits_80_columns_with_whole_table_names(home):
    shown = _status().output
    assert max(len(line) for line in shown.splitlines() if not line.startswith("/")) <= 80    # a path is whole
    lines = shown.splitlines()
    for name in _names():                          # each table once, on one line, its name whole
        assert sum(1 for line in lines if line.startswith(f"{name} ")) >= 1, name
    reasons = _status(columns="60").output.split("quarantined lines by reason")[1].split("failing checks")[0]
    assert max(len(line) for line in reasons.splitlines()) <= 60    # COLUMNS honoured when piped: reasons wrap
    assert "staging.gate_event " in reasons


def test_json_has_one_row_per_table_with_the_lakes_counts(home):
    document = json.loads(_status("--format", "json").output)
    assert set(document) == {"home", "dictionary", "runs", "tables", "failing_checks", "not_loaded", "counter_exceptions",
                             "retention_sweeps", "problems"}
    tables = {t["table"]: t for t in document["tables"]}
    assert sorted(tables) == sorted(_names()) and all(set(t) == TABLE_KEYS for t in tables.values())
    con = compute_connection(home)
    try:
        for name in ("staging.gate_event", "core.fact_loan", "marts.space_utilisation", "staging.patron"):
            assert tables[name]["rows"] == con.execute(f"select count(*) from {name}").fetchone()[0], name
        newest = con.execute("select max(event_date) from staging.gate_event").fetchone()[0]
        quarantined = con.execute("select count(*) from quarantine.gates where staging_table = 'gate_event'"
                                  ).fetchone()[0]
    finally:
        con.close()
    assert tables["staging.gate_event"]["newest"] == newest.isoformat()
    assert tables["staging.gate_event"]["quarantined"] == quarantined
    assert tables["core.fact_loan"]["quarantined"] is None          # quarantine belongs to staging tables
    assert {r["status"] for r in document["runs"]} == {"SUCCESS"} or document["runs"] == []


def test_a_home_without_the_record_shows_the_same_tables(home):
    recorded = json.loads(_status("--format", "json").output)["tables"]
    state_path(home).unlink()
    live = json.loads(_status("--format", "json").output)["tables"]
    drop = ("written_at",)
    assert [{k: v for k, v in t.items() if k not in drop} for t in live] == \
           [{k: v for k, v in t.items() if k not in drop} for t in recorded]


def test_a_check_failing_in_three_runs_is_shown_once(home):
    for number, key in enumerate(["2025-09-01", "2025-09-02", "2025-09-02"]):
        _fail(home, f"run-{number}", key)
    document = json.loads(_status("--format", "json").output)
    mine = [f for f in document["failing_checks"] if f["check"] == "row_count_within_limit"]
    assert len(mine) == 1 and set(mine[0]) == CHECK_KEYS
    assert (mine[0]["runs"], mine[0]["partitions"], mine[0]["observed"]) == (3, 2, "run-2: 9 rows")
    assert mine[0]["partition_range"] == "2025-09-01 .. 2025-09-02"
    gate_event = next(t for t in document["tables"] if t["table"] == "staging.gate_event")
    assert gate_event["checks_failing"] >= 1
    shown = [line for line in _status().output.splitlines() if "row_count_within_limit" in line]
    assert len(shown) == 1 and shown[0].split()[-2] == "3"
    assert read_check_state(home) == replayed(home)          # the record is the results replayed
    for run, key in (("run-3", "2025-09-01"), ("run-4", "2025-09-02")):   # passing again on both: gone
        write_results(home, run, [key], [CheckOutcome(
            "staging.gate_event", "row_count_within_limit", "expect_table_row_count_to_be_between", None, "warn",
            True, "9 rows", 0, [])])
    assert "row_count_within_limit|" not in " ".join(read_check_state(home))
    assert read_check_state(home) == replayed(home)
