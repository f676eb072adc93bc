"""The Dagster UI as `shuku ui` serves it, on 127.0.0.1, for tests that ask its GraphQL API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(base: str, query: str, variables: dict | None = None, timeout: int = 60) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


@contextmanager
def serving_ui(home: Path, cwd: Path):
    """`shuku ui` for the home folder, until the block ends: yields the UI's address once it answers."""
    port = free_port()
    env = {**os.environ, "SHUKU_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    env.pop("DAGSTER_HOME", None)
    shuku = Path(sys.executable).parent / "shuku"
    process = subprocess.Popen([str(shuku), "ui", "--port", str(port)], env=env, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, process.stderr.read().decode(errors="replace")[-2000:]
            try:
                graphql(base, "{ version }", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the UI did not answer within 180 s"
                time.sleep(1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
