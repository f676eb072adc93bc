"""The harvester against the official COUNTER_SUSHI 5.1 API description served by Prism on 127.0.0.1
(`make prism` installs it; `--errors` makes Prism refuse any request the description does not allow):
in example mode a three-month harvest fills landing and the warehouse; in dynamic mode, answers
generated from the schemas are stored byte for byte and every cell is accounted for."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from assets.eresources.coverage import stored
from pipelines.cli import main
from warehouse.lake.views import compute_connection
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, REPO_ROOT, Settings

pytestmark = pytest.mark.slow
SPEC = Path(__file__).parent / "data" / "counter_api" / "COUNTER_API_r51.json"
PRISM = REPO_ROOT / ".prism" / "node_modules" / ".bin" / "prism"
KEY_ENV, KEY = "SHUKU_TEST_PRISM_KEY", "prism-key-never-stored"


def _prism(*mode: str):
    if not PRISM.exists():
        subprocess.run(["make", "-C", str(REPO_ROOT), "prism"], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SCARF_ANALYTICS": "false"}
    process = subprocess.Popen([str(PRISM), "mock", "--errors", *mode, "-h", "127.0.0.1", "-p", str(port), str(SPEC)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}/r51"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}/status", timeout=2).read()
            return process, base
        except OSError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise RuntimeError(f"Prism did not start on 127.0.0.1:{port}")


@pytest.fixture
def prism_examples():
    process, base = _prism()
    yield base
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


@pytest.fixture
def prism_dynamic():
    process, base = _prism("-d", "--seed", "shuku")
    yield base
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def _configure(tmp_path: Path, monkeypatch, base: str, reports: list[str]) -> Settings:
    data = yaml.safe_load(DEFAULT_LIBRARY_CONFIG.read_text(encoding="utf-8"))
    data["counter"] = {"retry_wait_seconds": 0, "platforms": [
        {"name": "Platform 1", "base_url": base, "release": "5.1", "customer_id": "cust-1", "requestor_id": "req-1",
         "platform": "Platform 1", "reports": reports, "api_key_env": KEY_ENV}]}
    config = tmp_path / "library.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    shutil.copyfile(DEFAULT_LIBRARY_CONFIG.with_name("eresource_costs.yaml"), tmp_path / "eresource_costs.yaml")
    monkeypatch.setenv("SHUKU_LIBRARY_CONFIG", str(config))
    monkeypatch.setenv(KEY_ENV, KEY)
    return Settings(tmp_path / "home")


def _landed(settings: Settings) -> dict[str, dict]:
    """Landing file → its request record; each record's SHA-256 is the file's."""
    records = {}
    for path in sorted((settings.landing / "counter").rglob("*.request.json")):
        record = json.loads(path.read_text())
        answer = settings.landing / record["file"]
        assert hashlib.sha256(answer.read_bytes()).hexdigest() == record["sha256"]
        records[record["file"]] = record
    return records


def test_three_months_from_the_official_examples_fill_landing_and_the_warehouse(tmp_path, monkeypatch, prism_examples):
    settings = _configure(tmp_path, monkeypatch, prism_examples, ["DR", "TR", "IR"])
    result = CliRunner().invoke(main, ["harvest", "--from", "2022-01", "--to", "2022-03"])
    assert result.exit_code == 0, result.output
    records = _landed(settings)
    assert sorted(records) == [f"counter/2022-01/Platform-1_{r}_2022-01_2022-03.json" for r in ("DR", "IR", "TR")]
    assert {r["params"]["api_key"] for r in records.values()} == {"(withheld)"}
    cells = stored(settings)
    assert cells.height == 9 and set(cells.get_column("status")) == {"harvested"}
    con = compute_connection(settings)
    try:
        months = con.execute("select strftime(usage_month, '%Y-%m'), report_id, count(*) from core.fact_counter_usage "
                             "group by all order by 1, 2").fetchall()
    finally:
        con.close()
    assert [(m, r) for m, r, _ in months] == [(m, r) for m in ("2022-01", "2022-02", "2022-03") for r in ("DR", "IR", "TR")]
    assert all(n > 0 for *_, n in months)
    assert KEY.encode() not in b"".join(p.read_bytes() for p in settings.home.rglob("*") if p.is_file())


def test_answers_generated_from_the_schemas_are_stored_as_sent_and_accounted_for(tmp_path, monkeypatch, prism_dynamic):
    settings = _configure(tmp_path, monkeypatch, prism_dynamic, ["PR", "DR", "TR", "IR"])
    result = CliRunner().invoke(main, ["harvest", "--from", "2024-10", "--to", "2024-12", "--no-load"])
    cells = stored(settings)
    assert cells.height == 12, result.output          # every report × month has its cell, whatever came back
    assert set(cells.get_column("status")) <= {"harvested", "partial", "no_usage", "pending", "failed"}
    records = _landed(settings)
    landed = set(cells.get_column("source_file").drop_nulls())
    assert landed == set(records) and records
    # Prism (--errors) refuses a request the description does not allow: none was refused.
    assert not any("HTTP 4" in (reason or "") or "1030" in (reason or "") for reason in cells.get_column("reason"))
