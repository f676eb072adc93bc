"""`shuku ui` serves the Dagster UI on 127.0.0.1 with every asset of the code location."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

QUERY = "{ assetNodes { assetKey { path } } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_the_asset_graph(tmp_path):
    port = _free_port()
    env = {**os.environ, "SHUKU_HOME": str(tmp_path / "home"), "DAGSTER_DISABLE_TELEMETRY": "1"}
    shuku = Path(sys.executable).parent / "shuku"
    process = subprocess.Popen([str(shuku), "ui", "--port", str(port)], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        nodes = None
        while time.monotonic() < deadline and nodes is None:
            assert process.poll() is None, process.stderr.read().decode(errors="replace")[-2000:]
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": QUERY}).encode(),
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    nodes = json.load(response)["data"]["assetNodes"]
            except (OSError, KeyError, TypeError):
                time.sleep(1)
        assert nodes is not None, "the UI did not answer within 120 s"
        keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
        assert {"staging/gate_event", "core/fact_loan", "marts/space_utilisation"} <= keys
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
