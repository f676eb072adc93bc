"""The lineage transports: every event posted to an HTTP server (a small one on 127.0.0.1) and kept
in the file, a server that is down costing a warning and not the run, and an exception emitted as a
FAIL event (valid against the official schema) and raised again."""

import http.server
import json
import logging
import socket

import threading

import pytest
from referencing import Registry

from lineage.observe import observe
from lineage.store import read_events
from lineage.transport import events_path
from tests.openlineage_schema import official_registry, schema_errors
from warehouse.settings import Settings


@pytest.fixture(scope="module")
def registry() -> Registry:
    return official_registry()


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def _observe_one(settings: Settings, job: str = "core.dim_zone") -> None:
    with observe(settings, job=job, run_id="7b0a2f0c-8d1e-4c57-9a3e-0f5a1c2d3e4f", inputs=[],
                 outputs=["core.dim_zone"]) as observation:
        observation.add_output("core.dim_zone", rows=6, bytes=1000, files=1)


def test_http_transport_posts_every_event_and_the_file_keeps_them(tmp_path, monkeypatch):
    _Collector.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_address[1]}")
        settings = Settings(tmp_path / "home").ensure()
        _observe_one(settings)
    finally:
        server.shutdown()
        server.server_close()
    assert [(p, e["eventType"]) for p, e in _Collector.received] == [("/api/v1/lineage", "START"),
                                                                    ("/api/v1/lineage", "COMPLETE")]
    assert [e["eventType"] for e in read_events(settings)] == ["START", "COMPLETE"]


def test_a_server_that_is_down_costs_a_warning_not_the_run(tmp_path, monkeypatch, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{port}")
    settings = Settings(tmp_path / "home").ensure()
    with caplog.at_level(logging.WARNING, logger="shuku.lineage"):
        _observe_one(settings)
    assert "did not take the event" in caplog.text and str(events_path(settings)) in caplog.text
    assert [e["eventType"] for e in read_events(settings)] == ["START", "COMPLETE"]


def test_an_exception_emits_fail_with_the_error_and_is_raised_again(tmp_path, registry):
    settings = Settings(tmp_path / "home").ensure()
    with pytest.raises(RuntimeError, match="zone table could not be written"):
        with observe(settings, job="core.dim_zone", run_id="run-1", inputs=[], outputs=["core.dim_zone"]):
            raise RuntimeError("zone table could not be written")
    start, fail = read_events(settings)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    error = fail["run"]["facets"]["errorMessage"]
    assert error["message"] == "RuntimeError: zone table could not be written"
    assert error["programmingLanguage"] == "python" and "Traceback" in error["stackTrace"]
    assert schema_errors(fail, registry) == []
