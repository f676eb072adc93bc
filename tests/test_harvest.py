"""The COUNTER_SUSHI harvester against a small server of our own on 127.0.0.1: a queued report is asked
again after a wait (never slept here) and then stored and loaded; refused credentials stop the platform
and say so; 3030 and 3040 are recorded; the API key is never stored, logged or shown."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from assets.eresources.coverage import stored
from assets.eresources.harvest import harvest, months_between
from pipelines.cli import main
from pipelines.alerts import harvest_failure_alerts
from pipelines.cli_report import _harvest_coverage
from pipelines.definitions import build_definitions
from tests.sushi_server import API_KEY, SushiServer
from warehouse.lake.views import compute_connection
from warehouse.library import LibraryConfigError, load_library
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, Settings

KEY_ENV = "SHUKU_TEST_SUSHI_KEY"
JUL, AUG, SEP = dt.date(2025, 7, 1), dt.date(2025, 8, 1), dt.date(2025, 9, 1)


def _config(tmp_path: Path, platforms: list[dict], **counter) -> Path:
    data = yaml.safe_load(DEFAULT_LIBRARY_CONFIG.read_text(encoding="utf-8"))
    data["counter"] = {"platforms": platforms, **counter}
    path = tmp_path / "library.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _platform(server: SushiServer, **extra) -> dict:
    return {"name": "Test Platform", "base_url": server.base_url, "release": "5.1", "customer_id": "cust-42",
            "requestor_id": "req-7", "reports": ["TR", "DR", "PR"], "api_key_env": KEY_ENV, "months_per_request": 1,
            **extra}


def _no_key_anywhere(home: Path) -> None:
    for path in home.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_queued_then_ready_is_retried_then_stored_partial_and_no_usage_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    settings = Settings(tmp_path / "home").ensure()
    waits: list[float] = []
    with SushiServer({"tr": "queued-then-ready", "dr": "partial", "pr": "no-usage-bare"}) as server:
        library = load_library(_config(tmp_path, [_platform(server)], retry_wait_seconds=30))
        done = harvest(settings, library, [JUL, AUG], sleep=waits.append)
    assert waits == [30.0, 30.0]                    # one wait per queued TR month, none slept
    assert [p for p, _ in server.requests][0] == "/r51/status"
    asked = [q for p, q in server.requests if p == "/r51/reports/tr"]
    assert len(asked) == 4 and asked[0] == {"customer_id": "cust-42", "requestor_id": "req-7", "begin_date": "2025-07",
                                            "end_date": "2025-07", "api_key": API_KEY}
    cells = {(c["report_id"], c["usage_month"]): c for c in done.cells}
    assert {k: (c["status"], c["code"], c["attempts"]) for k, c in cells.items()} == {
        ("TR", JUL): ("harvested", None, 2), ("TR", AUG): ("harvested", None, 2),
        ("DR", JUL): ("partial", 3040, 1), ("DR", AUG): ("partial", 3040, 1),
        ("PR", JUL): ("no_usage", 3030, 1), ("PR", AUG): ("no_usage", 3030, 1)}
    assert "logging failed on 3 days" in cells[("DR", JUL)]["reason"]
    # Each answer byte for byte in landing, its request beside it without the key, its SHA-256 recorded.
    tr = settings.landing / "counter/2025-07/Test-Platform_TR_2025-07.json"
    record = json.loads(tr.with_name(tr.name + ".request.json").read_text())
    assert record["sha256"] == hashlib.sha256(tr.read_bytes()).hexdigest() == cells[("TR", JUL)]["file_sha256"]
    assert record["params"]["api_key"] == "(withheld)" and record["attempts"] == 2 and record["http_status"] == 200
    assert json.loads(tr.read_bytes())["Report_Header"]["Report_ID"] == "TR"
    assert cells[("TR", JUL)]["usage_rows"] == 4
    assert stored(settings).height == 6
    # The report page draws the matrix and says why the cells not harvested are so.
    page = re.sub(r' data-label="[^"]*"', "", _harvest_coverage(settings))
    assert '<td>TR</td><td>✓</td><td>✓</td>' in page and "logging failed on 3 days" in page
    _no_key_anywhere(settings.home)


def test_refused_credentials_stop_the_platform_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    settings = Settings(tmp_path / "home").ensure()
    with SushiServer() as server:
        library = load_library(_config(tmp_path, [_platform(server)]))
        done = harvest(settings, library, [JUL, AUG], sleep=lambda s: pytest.fail("a refused key is not retried"))
    assert [p for p, _ in server.requests] == ["/r51/status", "/r51/reports/tr"]
    assert {c["status"] for c in done.cells} == {"failed"} and len(done.cells) == 6
    assert {c["code"] for c in done.cells} == {2020}
    assert "credentials refused: 2020 API Key Invalid" in done.notes[0]
    assert not (settings.landing / "counter").exists()


def test_still_queued_is_pending_and_the_next_harvest_asks_again(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    monkeypatch.setenv("SHUKU_HOME", str(tmp_path / "home"))
    with SushiServer({"tr": "queued-then-ready"}, queued_times=3) as server:
        config = _config(tmp_path, [_platform(server, reports=["TR"])], retry_attempts=2, retry_wait_seconds=0)
        monkeypatch.setenv("SHUKU_LIBRARY_CONFIG", str(config))
        first = CliRunner().invoke(main, ["harvest", "--from", "2025-08", "--to", "2025-08", "--no-load"])
        assert first.exit_code == 0, first.output
        cell = stored(Settings(tmp_path / "home")).row(0, named=True)
        assert (cell["status"], cell["code"], cell["attempts"]) == ("pending", 1011, 2)
        assert "harvested again next time" in cell["reason"]
        # The next harvest starts from the pending month by itself and records it harvested.
        again = CliRunner().invoke(main, ["harvest", "--to", "2025-08", "--no-load"])
    assert again.exit_code == 0, again.output
    cell = stored(Settings(tmp_path / "home")).row(0, named=True)
    assert (cell["status"], cell["usage_month"]) == ("harvested", AUG)


def test_inactive_service_is_not_asked_for_reports(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    settings = Settings(tmp_path / "home").ensure()
    with SushiServer(active=False) as server:
        done = harvest(settings, load_library(_config(tmp_path, [_platform(server)])), [JUL], sleep=lambda s: None)
    assert [p for p, _ in server.requests] == ["/r51/status"]
    assert {c["status"] for c in done.cells} == {"pending"}
    assert "not active (maintenance)" in done.cells[0]["reason"]


def test_config_refuses_a_key_in_it_and_a_missing_key_is_named_not_shown(tmp_path, monkeypatch):
    with pytest.raises(LibraryConfigError, match=r"counter.platforms\[0\].api_key`: secrets do not belong"):
        load_library(_config(tmp_path, [{"name": "X", "base_url": "http://127.0.0.1:9/r51", "release": "5.1",
                                         "customer_id": "c", "api_key": API_KEY}]))
    with pytest.raises(LibraryConfigError, match=r"release` = '6'"):
        load_library(_config(tmp_path, [{"name": "X", "base_url": "http://127.0.0.1:9", "release": "6",
                                         "customer_id": "c"}]))
    monkeypatch.delenv(KEY_ENV, raising=False)
    settings = Settings(tmp_path / "home").ensure()
    with SushiServer() as server:
        done = harvest(settings, load_library(_config(tmp_path, [_platform(server)])), [JUL])
    assert server.requests == []
    assert f"the environment variable {KEY_ENV} (api_key_env) is not set" in done.cells[0]["reason"]


def test_harvest_command_lands_and_loads_three_months(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    home = tmp_path / "home"
    with SushiServer({"tr": "queued-then-ready"}) as server:
        monkeypatch.setenv("SHUKU_LIBRARY_CONFIG", str(_config(tmp_path, [_platform(server, reports=["TR", "DR"])],
                                                               retry_wait_seconds=0)))
        result = CliRunner().invoke(main, ["harvest", "--from", "2025-07", "--to", "2025-09", "--no-models"])
        assert result.exit_code == 0, result.output
        status = CliRunner().invoke(main, ["status"])
    assert "COUNTER harvest coverage" in status.output and "Test Platform" in status.output
    con = compute_connection(Settings(home))
    try:
        months = con.execute("select strftime(usage_month, '%Y-%m'), report_id, sum(usage_count) "
                             "from staging.counter_usage group by all order by 1, 2").fetchall()
        logged = con.execute("select count(*) from meta.ingest_log where file_status = 'loaded'").fetchone()[0]
    finally:
        con.close()
    assert months == [(m, r, 37) for m in ("2025-07", "2025-08", "2025-09") for r in ("DR", "TR")]
    assert logged == 6
    _no_key_anywhere(home)


def test_the_monthly_asset_harvests_then_loads_its_month(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    settings = Settings(tmp_path / "home").ensure()
    with SushiServer() as server:
        config = _config(tmp_path, [_platform(server, reports=["TR"])])
        monkeypatch.setenv("SHUKU_LIBRARY_CONFIG", str(config))
        defs = build_definitions(settings, load_library(config))
        job = defs.resolve_job_def("harvest_counter")
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key="2025-08",
                                        asset_selection=[dg.AssetKey(["meta", "counter_harvest"]),
                                                         dg.AssetKey(["staging", "counter_usage"])])
    assert result.success
    harvested = next(m for m in result.get_asset_materialization_events()
                     if m.asset_key == dg.AssetKey(["meta", "counter_harvest"]))
    assert harvested.materialization.metadata["cells_harvested"].value == 1
    assert stored(settings).select("status").to_series().to_list() == ["harvested"]
    staged = pl.read_parquet(next((settings.lake / "staging" / "counter_usage").rglob("*.parquet")))
    assert staged.get_column("usage_count").sum() == 37
    assert months_between(JUL, SEP) == [JUL, AUG, SEP]


def test_a_refused_key_in_the_monthly_asset_raises_an_alert_without_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    settings = Settings(tmp_path / "home").ensure()
    instance = dg.DagsterInstance.ephemeral()
    with SushiServer() as server:
        config = _config(tmp_path, [_platform(server, reports=["TR", "DR"])])
        monkeypatch.setenv("SHUKU_LIBRARY_CONFIG", str(config))
        job = build_definitions(settings, load_library(config)).resolve_job_def("harvest_counter")
        result = job.execute_in_process(instance=instance, partition_key="2025-08",
                                        asset_selection=[dg.AssetKey(["meta", "counter_harvest"])])
    assert result.success                              # the run goes on; the alert says what failed
    alerts = harvest_failure_alerts(instance, result.run_id)
    assert sorted(a.summary for a in alerts) == ["[shuku] COUNTER report not harvested: Test Platform DR 2025-08",
                                                 "[shuku] COUNTER report not harvested: Test Platform TR 2025-08"]
    assert all("2020" in a.error and "credentials refused" in a.error for a in alerts), [a.error for a in alerts]
    assert all("not-the-key" not in a.text() for a in alerts)
    assert alerts[0].see[0] == "shuku harvest --platform 'Test Platform' --from 2025-08 --to 2025-08"
