"""Alerts: a failed run or a failed check, written to the home folder's alerts log and sent on.

Every alert goes to ``$SHUKU_HOME/alerts/alerts.jsonl`` first, then by e-mail when
``SHUKU_SMTP_HOST`` is set and to a webhook when ``SHUKU_ALERT_WEBHOOK`` is set (read when an
alert is sent, never at import). An alert names the run, job, partition, table, check or
error and the command that shows more; its text passes the same scrubber as quarantined
rows, so no card number, e-mail or phone number leaves in it. The two sensors and `shuku run`
(which runs without the daemon) share these functions; an alert is sent once per key
whoever notices it first.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
import email.policy
from email.message import EmailMessage

import dagster as dg
import polars as pl

from assets.resources import ShukuWarehouse
from pipelines.runner import error_message
from quality.rules import library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

RUN_FAILURE = "run_failure"
CHECK_FAILURE = "check_failure"
DELIVERY_FAILED = "delivery_failed"
UNRECOGNISED_FILE = "unrecognised_file"
ERROR_CHARS = 600
TIMEOUT_SECONDS = 10


@dataclass
class Alert:
    kind: str                       # RUN_FAILURE, CHECK_FAILURE or UNRECOGNISED_FILE
    key: str                        # one alert per key: the run, or the run, table and check
    summary: str                    # one line: the e-mail subject
    run_id: str
    job: str
    partition: str | None = None
    table: str | None = None
    check: str | None = None
    severity: str | None = None
    observed: str | None = None
    error: str | None = None
    step: str | None = None
    not_built: list[str] = field(default_factory=list)
    see: list[str] = field(default_factory=list)
    at: str = ""

    def text(self) -> str:
        """The alert as a person reads it (e-mail body, webhook ``text``)."""
        lines = [self.summary, ""]
        for label, value in (("job", self.job), ("run", self.run_id), ("partition", self.partition),
                             ("table", self.table), ("check", self.check), ("severity", self.severity),
                             ("observed", self.observed), ("failed step", self.step), ("error", self.error)):
            if value:
                lines.append(f"{label}: {value}")
        if self.not_built:
            lines.append(f"not built in this run: {', '.join(self.not_built)}")
        lines += ["", "to see more:", *(f"  {s}" for s in self.see)]
        return "\n".join(lines)


@dataclass(frozen=True)
class Channels:
    """Where alerts go besides the log, from the environment at the time of sending."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "shuku@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    webhook: str | None = None
    warnings: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Channels":
        env = os.environ if environ is None else environ
        port = env.get("SHUKU_SMTP_PORT") or "25"
        if not port.isdigit():
            raise ValueError(f"SHUKU_SMTP_PORT={port!r} is not a port number; set it to e.g. 25 or 587.")
        return cls(smtp_host=env.get("SHUKU_SMTP_HOST") or None, smtp_port=int(port),
                   smtp_from=env.get("SHUKU_SMTP_FROM") or cls.smtp_from,
                   smtp_to=tuple(a.strip() for a in (env.get("SHUKU_SMTP_TO") or "").split(",") if a.strip()),
                   smtp_user=env.get("SHUKU_SMTP_USER") or None, smtp_password=env.get("SHUKU_SMTP_PASSWORD") or None,
                   smtp_starttls=_yes(env.get("SHUKU_SMTP_STARTTLS")),
                   webhook=env.get("SHUKU_ALERT_WEBHOOK") or None, warnings=_yes(env.get("SHUKU_ALERT_WARNINGS")))


def _channels() -> tuple[Channels, str | None]:
    """The configured channels, or the log alone and what is wrong with the configuration."""
    try:
        return Channels.from_env(), None
    except ValueError as exc:
        return Channels(), str(exc)


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _asset_name(key: dg.AssetKey) -> str:
    return ".".join(key.path)


def _run_partition(run: dg.DagsterRun) -> str | None:
    tags = run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return start if start == end else f"{start}..{end}"
    return None


def _failed_checks(instance: dg.DagsterInstance, run_id: str, warnings: bool) -> list:
    evaluations = [e.dagster_event.event_specific_data
                   for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    return [e for e in evaluations if not e.passed and (warnings or e.severity == dg.AssetCheckSeverity.ERROR)]


def _text(metadata: dict, name: str) -> str | None:
    value = metadata.get(name)
    return None if value is None else str(getattr(value, "value", value))


def _short(message: str) -> str:
    """An error without the module path of its class: `DagsterAssetCheckFailedError: …`."""
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", message)


def run_failure_alert(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Alert:
    """The alert for a failed run: its first failed step and error, the error-severity checks that
    failed in it and the assets it planned but did not build."""
    steps, errors = [], []
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        if event.step_failure_data and event.step_failure_data.error:
            steps.append(event.step_key)
            errors.append(_short(error_message(event.step_failure_data.error)))
    # Every failed step: a refused delivery and a failing check of another table fail one run.
    step = ", ".join(steps) or None
    error = errors[0] if len(errors) == 1 else " | ".join(f"{s}: {e}" for s, e in zip(steps, errors)) or None
    if error is None:
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
            data = record.dagster_event.event_specific_data
            error = _short(error_message(data.error)) if data and data.error else record.dagster_event.message
    planned = {_asset_name(e.dagster_event.event_specific_data.asset_key)
               for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)}
    built = {_asset_name(e.dagster_event.asset_key)
             for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    checks = _failed_checks(instance, run.run_id, warnings=False)
    tables = list(dict.fromkeys(_asset_name(c.asset_key) for c in checks))
    stage = run.tags.get("shuku/stage")
    partition = _run_partition(run)
    return Alert(
        kind=RUN_FAILURE, key=f"{RUN_FAILURE}:{run.run_id}", run_id=run.run_id, job=run.job_name, partition=partition,
        summary=f"[shuku] run failed: {stage or run.job_name + (f' ({partition})' if partition else '')}, "
                f"step {step or '-'}",
        table=", ".join(tables) or None, check=", ".join(f"{_asset_name(c.asset_key)} {c.check_name}" for c in checks) or None,
        error=error, step=step, not_built=sorted(planned - built),
        see=[*(f"shuku quality {t}" for t in tables), "shuku status",
             f"shuku ui, then Runs, run {run.run_id} (its logs and the failed step)"])


def check_failure_alerts(instance: dg.DagsterInstance, run_id: str, warnings: bool = False) -> list[Alert]:
    """One alert per check that failed in a run (error severity; warnings too when ``warnings``)."""
    run = instance.get_run_by_id(run_id)
    alerts = []
    for check in _failed_checks(instance, run_id, warnings):
        table, severity = _asset_name(check.asset_key), check.severity.value.lower()
        partition = _text(check.metadata, "partitions") or (run and _run_partition(run)) or None
        alerts.append(Alert(
            kind=CHECK_FAILURE, key=f"{CHECK_FAILURE}:{run_id}:{table}:{check.check_name}", run_id=run_id,
            job=run.job_name if run else "-", partition=partition, table=table, check=check.check_name,
            severity=severity, observed=_text(check.metadata, "observed"),
            summary=f"[shuku] check failed ({severity}): {table} {check.check_name}"
                    f"{f' ({partition})' if partition else ''}",
            see=[f"shuku quality {table}", "shuku status",
                 f"shuku ui, then Assets, {table}, Checks (run {run_id})"]))
    return alerts


def unrecognised_file_alerts(instance: dg.DagsterInstance, run_id: str) -> list[Alert]:
    """One alert per landing file of which a run understood nothing (logged `unrecognised`, not loaded)."""
    from assets.staging import UNRECOGNISED_FILES

    run = instance.get_run_by_id(run_id)
    alerts, seen = [], set()
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.dagster_event.event_specific_data.materialization
        value = materialization.metadata.get(UNRECOGNISED_FILES)
        for source_file in (getattr(value, "value", value) or []):
            if source_file in seen:
                continue
            seen.add(source_file)
            table = _asset_name(materialization.asset_key)
            alerts.append(Alert(
                kind=UNRECOGNISED_FILE, key=f"{UNRECOGNISED_FILE}:{run_id}:{source_file}", run_id=run_id,
                job=run.job_name if run else "-", partition=run and _run_partition(run), table=table,
                summary=f"[shuku] landing file not recognised, not loaded: landing/{source_file}",
                error=f"landing/{source_file}: no row was read from it and none was rejected; its structure was "
                      f"not recognised as a file of {table} (meta.ingest_log: unrecognised). The run loaded the "
                      "other files.",
                see=[f"shuku parse SOURCE {source_file}",
                     "shuku sql \"select * from meta.ingest_log where file_status = 'unrecognised'\""]))
    return alerts


def _scrub(settings: Settings, alerts: list[Alert]) -> None:
    """The text an alert carries from an error never holds a card number, e-mail or phone number."""
    pattern = library(settings).card_number_pattern
    pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
    for alert in alerts:
        for name in ("summary", "error", "observed"):
            value = getattr(alert, name)
            if value:
                if name == "error" and len(value) > ERROR_CHARS:
                    value = value[:ERROR_CHARS] + " …"
                setattr(alert, name, pseudonymiser.scrub(pl.Series([value], dtype=pl.Utf8), pattern)[0])


@contextmanager
def _locked(settings: Settings):
    path = settings.alerts_log
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _append(path, rows: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as log:
        for row in rows:
            log.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        log.flush()
        os.fsync(log.fileno())


def read_alerts(settings: Settings) -> list[dict]:
    """Every line of the alerts log, oldest first (a line cut by a crash is left out)."""
    path = settings.alerts_log
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _email(channels: Channels, alerts: list[Alert]) -> None:
    if not channels.smtp_to:
        raise ValueError("SHUKU_SMTP_HOST is set but SHUKU_SMTP_TO is not; set it to the recipients, comma-separated.")
    with smtplib.SMTP(channels.smtp_host, channels.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
        if channels.smtp_starttls:
            smtp.starttls()
        if channels.smtp_user:
            smtp.login(channels.smtp_user, channels.smtp_password or "")
        for alert in alerts:
            # Python folds a long subject before its first word, which mail clients show as a leading space.
            message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=400))
            message["Subject"], message["From"], message["To"] = alert.summary, channels.smtp_from, ", ".join(channels.smtp_to)
            message["X-Shuku-Alert"] = alert.key
            message.set_content(alert.text())
            smtp.send_message(message)


def _post(url: str, alert: Alert) -> None:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"SHUKU_ALERT_WEBHOOK={url!r} is not an http(s) URL.")
    body = json.dumps({**asdict(alert), "text": alert.text()}, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "shuku-alerts"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        response.read()


def send(settings: Settings, alerts: list[Alert], channels: Channels | None = None) -> list[Alert]:
    """Log the alerts not logged before (by key), then e-mail and POST them; returns those sent.

    A channel that fails (server down, address refused, a setting that cannot be used) is logged
    as a ``delivery_failed`` line; the alert itself is already in the log, and nothing is raised.
    """
    problem = None
    if channels is None:
        channels, problem = _channels()
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with _locked(settings) as path:
        known = {row.get("key") for row in read_alerts(settings) if row.get("kind") != DELIVERY_FAILED}
        fresh = list({a.key: a for a in alerts if a.key not in known}.values())
        _scrub(settings, fresh)
        for alert in fresh:
            alert.at = now
        sent_to = ["log"] + (["email"] if channels.smtp_host else []) + (["webhook"] if channels.webhook else [])
        _append(path, [{**asdict(a), "channels": sent_to} for a in fresh])
    if not fresh:
        return []
    failures = [(a, "settings", ValueError(problem)) for a in fresh] if problem else []
    if channels.smtp_host:
        try:
            _email(channels, fresh)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            failures += [(a, "email", exc) for a in fresh]
    if channels.webhook:
        for alert in fresh:
            try:
                _post(channels.webhook, alert)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                failures.append((alert, "webhook", exc))
    if failures:
        with _locked(settings) as path:
            _append(path, [{"kind": DELIVERY_FAILED, "key": a.key, "channel": channel, "at": now,
                            "error": f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]} for a, channel, exc in failures])
    return fresh


def alert_after_runs(settings: Settings, instance: dg.DagsterInstance, run_ids: list[str]) -> list[Alert]:
    """What the sensors would send about these runs, for runs made without the daemon (`shuku run`)."""
    channels, problem = _channels()
    alerts = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None:
            continue
        if run.status == dg.DagsterRunStatus.FAILURE:
            alerts.append(run_failure_alert(instance, run))
        alerts += check_failure_alerts(instance, run_id, channels.warnings)
        alerts += unrecognised_file_alerts(instance, run_id)
    return send(settings, alerts, None if problem else channels)


def run_failure_alerts_sensor() -> dg.SensorDefinition:
    @dg.run_failure_sensor(name="run_failure_alerts", default_status=dg.DefaultSensorStatus.RUNNING,
                           minimum_interval_seconds=30,
                           description="Alerts on every failed run: the alerts log, e-mail and webhook "
                                       "when configured (SHUKU_SMTP_*, SHUKU_ALERT_WEBHOOK).")
    def sensor(context: dg.RunFailureSensorContext, shuku: ShukuWarehouse):
        sent = send(shuku.settings(), [run_failure_alert(context.instance, context.dagster_run)])
        context.log.info(f"{len(sent)} alert(s) sent for run {context.dagster_run.run_id}")

    return sensor


_FINISHED = (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE)


def _latest_storage_id(instance: dg.DagsterInstance, event_type: dg.DagsterEventType) -> int:
    records = instance.fetch_run_status_changes(event_type, limit=1, ascending=False).records
    return records[0].storage_id if records else 0


def check_failure_alerts_sensor() -> dg.SensorDefinition:
    @dg.sensor(name="check_failure_alerts", default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
               description="Alerts on every error-severity check that fails in a finished run (warnings too with "
                           "SHUKU_ALERT_WARNINGS=1): the alerts log, e-mail and webhook when configured.")
    def sensor(context: dg.SensorEvaluationContext, shuku: ShukuWarehouse):
        instance = context.instance
        if not context.cursor:
            # Start from now: turning alerts on does not replay a home folder's history.
            context.update_cursor(json.dumps({t.value: _latest_storage_id(instance, t) for t in _FINISHED}))
            return dg.SkipReason("alerting on runs that finish from now on")
        cursor = json.loads(context.cursor)
        run_ids = []
        for event_type in _FINISHED:
            records = instance.fetch_run_status_changes(
                dg.RunStatusChangeRecordsFilter(event_type, after_storage_id=cursor.get(event_type.value, 0)),
                limit=100, ascending=True).records
            run_ids += [r.run_id for r in records]
            if records:
                cursor[event_type.value] = records[-1].storage_id
        channels, problem = _channels()
        alerts = [a for run_id in run_ids for a in [*check_failure_alerts(instance, run_id, channels.warnings),
                                                     *unrecognised_file_alerts(instance, run_id)]]
        sent = send(shuku.settings(), alerts, None if problem else channels)
        context.update_cursor(json.dumps(cursor))
        if not sent:
            return dg.SkipReason(f"{len(run_ids)} finished run(s), no new failed check")
        context.log.info(f"{len(sent)} alert(s) sent on {len(run_ids)} finished run(s)")
        return None

    return sensor


def alert_sensors() -> list[dg.SensorDefinition]:
    return [run_failure_alerts_sensor(), check_failure_alerts_sensor()]
