"""Alerts on a real failing run: a turnstile file whose every line is broken is refused (the
stored partition kept), and a people-counter day left empty by an earlier run fails its blocking
row-count check, so the run fails. The run-failure and failed-check sensors (and
`shuku run`, which runs without the daemon) write the alerts log, e-mail a local SMTP server and
POST to a local webhook, each alert once, naming the table, partition, check or error and the
command that shows more, and never a card number or an e-mail address."""

import email
import email.policy
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from assets.resources import ShukuWarehouse
from pipelines.alert_delivery import CHECK_FAILURE, DELIVERY_FAILED, RUN_FAILURE, Alert, read_alerts, send
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.runner import QUIET_LOGS
from schemas.model import contract_for
from tests.hostile import CARD, EMAIL, assert_no_personal_data, broken_turnstile_file
from warehouse.audit_anchor import ANCHOR_ALERT
from warehouse.lake.partitions import write_partition
from warehouse.settings import Settings

DAY = "2025-09-02"
GATE_EVENT = dg.AssetKey(["staging", "gate_event"])
GATE_COUNT = dg.AssetKey(["staging", "gate_count"])


def _empty_counter_day(settings: Settings) -> None:
    """A gate_count partition an earlier run left empty (its export held no row), and no file to reload it."""
    contract = contract_for("staging.gate_count")
    write_partition(settings, contract, DAY, contract.empty_frame())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", errors="replace")))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller.port, mailbox
    controller.stop()


@pytest.fixture
def webhook_server():
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/shuku", received
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_failing_run_alerts_in_the_log_by_email_and_at_the_webhook(tmp_path, monkeypatch, smtp_server, webhook_server):
    smtp_port, mailbox = smtp_server
    webhook_url, posts = webhook_server
    monkeypatch.setenv("SHUKU_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SHUKU_SMTP_PORT", str(smtp_port))
    monkeypatch.setenv("SHUKU_SMTP_FROM", "shuku@library.example")
    monkeypatch.setenv("SHUKU_SMTP_TO", "data-librarians@library.example, systems@library.example")
    monkeypatch.setenv("SHUKU_ALERT_WEBHOOK", webhook_url)
    settings = Settings(tmp_path / "home").ensure()
    broken_turnstile_file(settings.landing, DAY)
    _empty_counter_day(settings)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"shuku": ShukuWarehouse(home=str(settings.home))}
    check_sensor = defs.resolve_sensor_def("check_failure_alerts")
    run_sensor = defs.resolve_sensor_def("run_failure_alerts")
    assert check_sensor.default_status == run_sensor.default_status == dg.DefaultSensorStatus.RUNNING

    # The check sensor's first tick only notes where the event log is: history is not replayed.
    with dg.build_sensor_context(instance=instance, resources=resources, definitions=defs) as context:
        first = check_sensor.evaluate_tick(context)
    assert first.cursor and not first.run_requests

    result = defs.resolve_job_def("load_gates").execute_in_process(
        instance=instance, partition_key=DAY, run_config=QUIET_LOGS, raise_on_error=False,
        asset_selection=[GATE_EVENT, GATE_COUNT, dg.AssetKey(["core", "fact_gate_event"])])
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)

    with dg.build_run_status_sensor_context(sensor_name="run_failure_alerts", dagster_event=failure,
                                            dagster_instance=instance, dagster_run=run, resources=resources) as context:
        run_sensor(context)
    with dg.build_sensor_context(instance=instance, resources=resources, definitions=defs, cursor=first.cursor) as context:
        second = check_sensor.evaluate_tick(context)

    everything = read_alerts(settings)
    # the audit trail's heads, published after the runs (warehouse.audit_anchor), go the same ways
    anchors = [row for row in everything if row["kind"] == ANCHOR_ALERT]
    logged = [row for row in everything if row["kind"] != ANCHOR_ALERT]
    by_kind = {row["kind"]: row for row in logged}
    assert sorted(by_kind) == [CHECK_FAILURE, RUN_FAILURE] and len(logged) == 2, logged
    assert len(anchors) == 1 and anchors[0]["channels"] == ["log", "email", "webhook"], anchors
    sent = len(everything)
    check = by_kind[CHECK_FAILURE]
    assert (check["table"], check["check"], check["severity"], check["partition"]) == (
        "staging.gate_count", "row_count", "error", DAY)
    assert check["run_id"] == result.run_id and check["job"] == "load_gates"
    assert "shuku quality staging.gate_count" in check["see"]
    failed_run = by_kind[RUN_FAILURE]
    assert failed_run["run_id"] == result.run_id and failed_run["partition"] == DAY
    assert sorted(failed_run["step"].split(", ")) == ["ingest_gate_counter", "ingest_turnstile"]
    assert "ingest_gate_counter: DagsterAssetCheckFailedError: " in failed_run["error"]
    assert ("ingest_turnstile: DeliveryRefused: 6 of 6 lines of landing/gates/turnstile_2025-09-02.csv are "
            "malformed: is this a turnstile export?") in failed_run["error"]
    assert "core.fact_gate_event" in failed_run["not_built"]
    assert {"shuku status", "shuku quality staging.gate_count"} <= set(failed_run["see"])
    assert all(row["channels"] == ["log", "email", "webhook"] for row in logged)
    assert_no_personal_data(settings.alerts_log.read_text(encoding="utf-8"))

    assert len(mailbox.messages) == sent
    assert {tuple(r) for r, _ in mailbox.messages} == {("data-librarians@library.example", "systems@library.example")}
    mails = [email.message_from_string(m, policy=email.policy.default) for _, m in mailbox.messages]
    assert "[shuku] check failed (error): staging.gate_count row_count (2025-09-02)" in {m["Subject"] for m in mails}
    assert {m["X-Shuku-Alert"] for m in mails} == {row["key"] for row in everything}
    bodies = "\n".join(m.get_content() for m in mails)
    assert f"run: {result.run_id}" in bodies and "shuku quality staging.gate_count" in bodies
    assert_no_personal_data(bodies + "".join(m for _, m in mailbox.messages))

    assert len(posts) == sent and {c for c, _ in posts} == {"application/json"}
    assert {p["key"] for _, p in posts} == {row["key"] for row in everything}
    assert all("shuku status" in p["text"] for _, p in posts if p["kind"] != ANCHOR_ALERT)
    assert_no_personal_data(json.dumps([p for _, p in posts]))

    # Noticed again (another tick, or `shuku run` on the same run): nothing is sent twice.
    with dg.build_run_status_sensor_context(sensor_name="run_failure_alerts", dagster_event=failure,
                                            dagster_instance=instance, dagster_run=run, resources=resources) as context:
        run_sensor(context)
    with dg.build_sensor_context(instance=instance, resources=resources, definitions=defs, cursor=second.cursor) as context:
        third = check_sensor.evaluate_tick(context)
    assert third.skip_message and len(read_alerts(settings)) == sent and len(mailbox.messages) == sent
    assert len(posts) == sent


@pytest.mark.slow
def test_shuku_run_alerts_without_the_daemon_and_shuku_alerts_lists_them(tmp_path, monkeypatch):
    settings = Settings(tmp_path / "home").ensure()
    monkeypatch.setenv("SHUKU_HOME", str(settings.home))
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))   # `shuku run` sets it; restored after
    broken_turnstile_file(settings.landing, DAY)
    _empty_counter_day(settings)
    runner = CliRunner()
    ran = runner.invoke(main, ["run", "--select", "gates"], terminal_width=200)
    assert ran.exit_code == 1, ran.output
    assert "3 alert(s) sent" in ran.output          # and the audit trail's heads
    kinds = sorted(row["kind"] for row in read_alerts(settings))
    assert kinds == [ANCHOR_ALERT, CHECK_FAILURE, RUN_FAILURE]

    listed = runner.invoke(main, ["alerts"], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert "check failed (error): staging.gate_count row_count" in listed.output
    assert "run failed: daily feeds 2025-09-02..2025-09-02" in listed.output
    assert "shuku quality staging.gate_count" in listed.output
    as_json = [json.loads(line) for line in runner.invoke(main, ["alerts", "--format", "json", "--limit", "2"]).output.splitlines()]
    # newest first: the heads of the audit trail after the runs, then the checks, which follow their run
    assert [a["kind"] for a in as_json] == [ANCHOR_ALERT, CHECK_FAILURE]


def test_an_unreachable_mail_server_leaves_the_alert_in_the_log_and_says_so(tmp_path, monkeypatch):
    settings = Settings(tmp_path / "home").ensure()
    monkeypatch.setenv("SHUKU_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SHUKU_SMTP_PORT", str(_free_port()))    # nothing listens there
    monkeypatch.setenv("SHUKU_SMTP_TO", "data-librarians@library.example")
    alert = Alert(kind=RUN_FAILURE, key="run_failure:r1", summary="[shuku] run failed: daily feeds", run_id="r1",
                  job="daily_ingest", error=f"line 2: card {CARD} of {EMAIL} could not be read", see=["shuku status"])
    assert [a.key for a in send(settings, [alert])] == ["run_failure:r1"]
    assert send(settings, [alert]) == []
    rows = read_alerts(settings)
    assert [r["kind"] for r in rows] == [RUN_FAILURE, DELIVERY_FAILED]
    assert rows[1]["channel"] == "email" and "ConnectionRefusedError" in rows[1]["error"]
    assert "card pid:" in rows[0]["error"] and "[email]" in rows[0]["error"]
    assert_no_personal_data(settings.alerts_log.read_text(encoding="utf-8"))

    listed = CliRunner().invoke(main, ["alerts"], env={"SHUKU_HOME": str(settings.home)}, terminal_width=200)
    assert "email failed: ConnectionRefusedError" in listed.output


def test_a_setting_that_cannot_be_used_is_named_and_the_alert_still_logged(tmp_path, monkeypatch):
    settings = Settings(tmp_path / "home").ensure()
    monkeypatch.setenv("SHUKU_SMTP_PORT", "twenty-five")
    alert = Alert(kind=RUN_FAILURE, key="run_failure:r2", summary="[shuku] run failed: build_models", run_id="r2",
                  job="build_models", see=["shuku status"])
    assert [a.key for a in send(settings, [alert])] == ["run_failure:r2"]
    rows = read_alerts(settings)
    assert [r["kind"] for r in rows] == [RUN_FAILURE, DELIVERY_FAILED]
    assert rows[1]["channel"] == "settings"
    assert "SHUKU_SMTP_PORT='twenty-five' is not a port number" in rows[1]["error"]

    monkeypatch.delenv("SHUKU_SMTP_PORT")
    monkeypatch.setenv("SHUKU_ALERT_WEBHOOK", f"file://{tmp_path}/hook.json")
    send(settings, [Alert(kind=RUN_FAILURE, key="run_failure:r3", summary="s", run_id="r3", job="j")])
    assert "is not an http(s) URL" in read_alerts(settings)[-1]["error"]
    assert not (tmp_path / "hook.json").exists()
