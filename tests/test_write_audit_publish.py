"""Write, audit, publish, end to end in real Dagster runs (ephemeral instances) on a tiny generated
library of two days: a broken re-delivery never replaces a stored partition, the run fails with
the reason in the library's words, and the rejected delivery's lines and log rows are kept; a
file nothing of which was understood is logged `unrecognised`, alerted on, and the rest loads."""

import datetime as dt
import gzip
import re

import dagster as dg
import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from assets.feeds import feed_named
from generator import generate
from pipelines.alert_delivery import UNRECOGNISED_FILE
from pipelines.alerts import alert_after_runs
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.runner import plan, run_stage
from pipelines.status import refused_files
from quality.checks import run_checks
from quality.plan import planned_checks
from schemas.model import contract_for
from tests.published import copied_home
from warehouse.lake.files import sha256_of
from warehouse.lake.paths import checksum_record_path
from warehouse.lake.views import compute_connection
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, Settings

START = dt.date(2025, 9, 1)
DAY = "2025-09-02"
TURNSTILE = feed_named("turnstile")
STEP = "ingest_turnstile"
CARD = re.compile(r"\b[0-9]{10}\b")       # the demo library's card numbers

pytestmark = pytest.mark.slow


def _run_gates(settings: Settings, instance: dg.DagsterInstance, first: str, last: str):
    """One run of the turnstile staging asset over first..last, as `shuku run --select turnstile` makes it."""
    [stage] = plan(settings, dt.date.fromisoformat(first), dt.date.fromisoformat(last), [TURNSTILE], models=False)
    return run_stage(build_definitions(settings), instance, stage)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, library):
    """Two tiny days of turnstile files, loaded once."""
    settings = Settings(tmp_path_factory.mktemp("wap") / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=7, start=START, days=2)
    result = _run_gates(settings, dg.DagsterInstance.ephemeral(), "2025-09-01", DAY)
    assert result.success, result.error
    return settings


@pytest.fixture
def home(loaded, tmp_path, monkeypatch):
    settings = copied_home(loaded, tmp_path / "copy")
    monkeypatch.setenv("SHUKU_HOME", str(settings.home))
    return settings


def _stored(settings: Settings, day: str = DAY):
    return settings.lake / "staging" / "gate_event" / f"event_date={day}" / "part-0.parquet"


def _landing(settings: Settings, day: str = DAY):
    return settings.landing / "gates" / f"turnstile_{day}.csv.gz"


def _break(settings: Settings) -> int:
    """Re-deliver the day's file with every data line malformed (';' for ','); returns its data lines."""
    path = _landing(settings)
    header, *lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join([header, *(line.replace(",", ";") for line in lines)]) + "\n").encode()))
    return len(lines)


def _snapshot(settings: Settings) -> dict:
    """What must not change when a delivery is refused: the partition's bytes and its checksum record."""
    stored = _stored(settings)
    return {"bytes": stored.read_bytes(), "record": checksum_record_path(settings, stored).read_bytes(),
            "folder": sorted(p.name for p in stored.parent.iterdir())}


def _events(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> list:
    return [r.dagster_event for r in instance.all_logs(run_id, of_type=kind)]


def _assert_refused_and_kept(settings, instance, result, before, step_message: str):
    assert not result.success
    assert _snapshot(settings) == before
    recorded = pl.read_parquet(checksum_record_path(settings, _stored(settings)))
    assert recorded["file_sha256"][0] == sha256_of(_stored(settings))[0]
    failures = _events(instance, result.run_id, dg.DagsterEventType.STEP_FAILURE)
    assert [f.step_key for f in failures] == [STEP]
    error = failures[0].step_failure_data.error      # a Failure (DeliveryRefused) is not wrapped
    assert error.cls_name == "DeliveryRefused" and failures[0].step_failure_data.user_failure_data
    message = error.message
    assert step_message in message, message
    assert not CARD.search(message)
    materialised = [e for e in _events(instance, result.run_id, dg.DagsterEventType.ASSET_MATERIALIZATION)
                    if e.asset_key == dg.AssetKey(["staging", "gate_event"])]
    assert materialised == []
    return message


def _ingest_log(settings: Settings, run_id: str) -> list[tuple]:
    con = compute_connection(settings, ["meta.ingest_log", "quarantine.gates"])
    try:
        return con.execute("SELECT source_file, partition_key, file_status, rows_read, rows_loaded, rows_quarantined "
                           "FROM meta.ingest_log WHERE run_id = ? ORDER BY partition_key, source_file",
                           [run_id]).fetchall()
    finally:
        con.close()


def test_a_broken_redelivery_is_refused_and_the_stored_partition_kept(home, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(home.dagster_home))     # `shuku status` sets it; restored after
    before = _snapshot(home)
    lines = _break(home)
    instance = dg.DagsterInstance.ephemeral()
    result = _run_gates(home, instance, DAY, DAY)

    expected = (f"{lines:,} of {lines:,} lines of landing/gates/turnstile_{DAY}.csv.gz are malformed: "
                "is this a turnstile export?")
    _assert_refused_and_kept(home, instance, result, before, expected)
    assert expected in result.error                       # what `shuku run` prints
    assert _ingest_log(home, result.run_id) == [
        (f"gates/turnstile_{DAY}.csv.gz", DAY, "rejected", lines, 0, lines)]
    con = compute_connection(home, ["quarantine.gates"])
    quarantined = con.execute("SELECT count(*), min(reason), max(reason) FROM quarantine.gates "
                              "WHERE run_id = ? AND partition_key = ?", [result.run_id, DAY]).fetchone()
    con.close()
    assert quarantined == (lines, "malformed_line", "malformed_line")
    status = CliRunner().invoke(main, ["status"], env={"COLUMNS": "250"})
    # the file and its day, refused, lines read and quarantined, why and what to do
    assert re.search(rf"landing/gates/turnstile_\S* \({DAY}\) +rejected +{lines:,} +{lines:,} +refused: ",
                     status.output), status.output
    [refused] = [r for r in refused_files(home) if r["file"] == f"gates/turnstile_{DAY}.csv.gz"]
    assert refused["meaning"].startswith(f"refused: {lines:,} of {lines:,} lines quarantined, most as malformed_line")
    assert f"shuku parse gates landing/gates/turnstile_{DAY}.csv.gz" in refused["meaning"]


def test_a_blocking_check_failing_on_the_new_rows_refuses_them(home, monkeypatch, tmp_path):
    """With refusal by share turned off, the empty day still never replaces the stored one: the
    blocking row_count check fails on the staged partition before it is published."""
    _no_share_limit(monkeypatch, tmp_path)
    before = _snapshot(home)
    lines = _break(home)
    instance = dg.DagsterInstance.ephemeral()
    result = _run_gates(home, instance, DAY, DAY)

    message = _assert_refused_and_kept(home, instance, result, before, "blocking check(s) failed on the new rows")
    assert "staging.gate_event row_count" in message and f"event_date={DAY}: 0 rows" in message
    assert [row[2] for row in _ingest_log(home, result.run_id)] == ["rejected"]
    assert _ingest_log(home, result.run_id)[0][3:] == (lines, 0, lines)


def _no_share_limit(monkeypatch, tmp_path) -> None:
    config = yaml.safe_load(DEFAULT_LIBRARY_CONFIG.read_text(encoding="utf-8"))
    config["max_quarantined_share"] = 1
    (tmp_path / "library.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("SHUKU_LIBRARY_CONFIG", str(tmp_path / "library.yaml"))


def test_a_backfill_refuses_only_the_day_failing_its_checks(home, monkeypatch, tmp_path):
    _no_share_limit(monkeypatch, tmp_path)
    first = _landing(home, "2025-09-01")
    header, *lines = gzip.decompress(first.read_bytes()).decode().splitlines()
    first.write_bytes(gzip.compress(("\n".join([header, *lines[:-40]]) + "\n").encode()))
    rows_before = pl.read_parquet(_stored(home, "2025-09-01")).height
    before = _snapshot(home)
    _break(home)
    instance = dg.DagsterInstance.ephemeral()
    result = _run_gates(home, instance, "2025-09-01", DAY)

    message = _assert_refused_and_kept(home, instance, result, before, f"new rows of turnstile {DAY} (from landing/")
    assert "2025-09-01" not in message
    assert rows_before - 40 <= pl.read_parquet(_stored(home, "2025-09-01")).height < rows_before
    assert [(row[1], row[2]) for row in _ingest_log(home, result.run_id)] == [("2025-09-01", "loaded"), (DAY, "rejected")]


def test_a_good_redelivery_replaces_the_partition(home):
    """The control: a re-delivery with fewer lines is published, with its checksum."""
    path = _landing(home)
    header, *lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join([header, *lines[:-40]]) + "\n").encode()))
    before = pl.read_parquet(_stored(home)).height
    result = _run_gates(home, dg.DagsterInstance.ephemeral(), DAY, DAY)
    assert result.success, result.error
    after = pl.read_parquet(_stored(home)).height
    assert before - 40 <= after < before
    recorded = pl.read_parquet(checksum_record_path(home, _stored(home)))
    assert recorded["file_sha256"][0] == sha256_of(_stored(home))[0]
    assert [row[2] for row in _ingest_log(home, result.run_id)] == ["loaded"]

    # The blocking checks ran once, on the staged rows; what the run recorded for them is what
    # checking the published partition afresh finds, and every other check ran after publishing.
    contract = contract_for("staging.gate_event")
    con = compute_connection(home, ["meta.quality_results"])
    recorded = {name: (success, observed) for name, success, observed in con.execute(
        "SELECT check_name, success, observed_value FROM meta.quality_results WHERE run_id = ? AND table_name = ?",
        [result.run_id, contract.qualified_name]).fetchall()}
    con.close()
    assert set(recorded) == {c.name for c in planned_checks(contract)}
    again = {o.check_name: (o.success, o.observed_value) for o in
             run_checks(contract, home, run_id="again", partition_keys=[DAY]) if o.severity == "error"}
    assert again and {k: v for k, v in recorded.items() if k in again} == again


def test_an_empty_file_is_logged_alerted_and_the_rest_loaded(home):
    """Day 1's only file, and a second file of day 2, hold a header and nothing else (a failed export).
    Day 1 keeps its stored partition; day 2 loads its other file."""
    header = gzip.decompress(_landing(home).read_bytes()).decode().splitlines()[0]
    first = _landing(home, "2025-09-01")
    first.write_bytes(gzip.compress(f"{header}\n".encode()))
    (home.landing / "gates" / f"turnstile_{DAY}.csv").write_text(f"{header}\n", encoding="utf-8")
    kept = _stored(home, "2025-09-01").read_bytes()
    rows_day2 = pl.read_parquet(_stored(home)).height

    instance = dg.DagsterInstance.ephemeral()
    result = _run_gates(home, instance, "2025-09-01", DAY)
    assert result.success, result.error
    assert _stored(home, "2025-09-01").read_bytes() == kept
    assert pl.read_parquet(_stored(home)).height == rows_day2
    log = _ingest_log(home, result.run_id)
    assert [(r[0], r[2]) for r in log] == [
        ("gates/turnstile_2025-09-01.csv.gz", "empty"),
        (f"gates/turnstile_{DAY}.csv", "empty"), (f"gates/turnstile_{DAY}.csv.gz", "loaded")]
    assert all(r[3:] == (0, 0, 0) for r in log if r[2] == "empty")

    sent = alert_after_runs(home, instance, [result.run_id])
    unrecognised = sorted(a.summary for a in sent if a.kind == UNRECOGNISED_FILE)
    assert unrecognised == [f"[shuku] landing file empty, not loaded: landing/gates/turnstile_{d}"
                            for d in ("2025-09-01.csv.gz", f"{DAY}.csv")]
