"""Sending alerts: every alert is written to the home folder's alerts log, then sent on.

Every alert goes to ``$SHUKU_HOME/alerts/alerts.jsonl`` first, then by e-mail when
``SHUKU_SMTP_HOST`` is set and to a webhook when ``SHUKU_ALERT_WEBHOOK`` is set (read when an
alert is sent, never at import). Its text passes the same scrubber as quarantined rows, so no
card number, e-mail or phone number leaves in it. An alert is sent once per key, whoever
notices it first (the sensors or `shuku run`).
"""

from __future__ import annotations

import datetime as dt
import email.policy
import fcntl
import json
import os
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage

import polars as pl

from quality.rules import library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

RUN_FAILURE = "run_failure"
CHECK_FAILURE = "check_failure"
DELIVERY_FAILED = "delivery_failed"
UNRECOGNISED_FILE = "unrecognised_file"
HARVEST_FAILURE = "harvest_failure"
ERROR_CHARS = 600
TIMEOUT_SECONDS = 10


@dataclass
class Alert:
    kind: str                       # RUN_FAILURE, CHECK_FAILURE, UNRECOGNISED_FILE or HARVEST_FAILURE
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


def configured_channels() -> tuple[Channels, str | None]:
    """The configured channels, or the log alone and what is wrong with the configuration."""
    try:
        return Channels.from_env(), None
    except ValueError as exc:
        return Channels(), str(exc)


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


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
        channels, problem = configured_channels()
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
