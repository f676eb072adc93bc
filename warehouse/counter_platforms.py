"""The COUNTER_SUSHI platforms a library harvests (`counter.platforms` in the library config).

A platform names its SUSHI server, the customer it asks for and the reports it wants. Its API key
is a secret: the config names the environment variable or the file that holds it
(`api_key_env`, `api_key_file`), never the key itself, so the config can be shared and logged.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

RELEASES = ("5", "5.1")
# The reports and standard views of Release 5 and 5.1 (the path after /reports/ is their id in lower case).
REPORT_IDS = ("PR", "PR_P1", "DR", "DR_D1", "DR_D2", "TR", "TR_B1", "TR_B2", "TR_B3", "TR_J1", "TR_J2", "TR_J3",
              "TR_J4", "IR", "IR_A1", "IR_M1")
DEFAULT_REPORTS = ("PR", "DR", "TR")
PLATFORM_KEYS = ("name", "base_url", "release", "customer_id", "requestor_id", "platform", "reports",
                 "api_key_env", "api_key_file", "months_per_request")
SECRET_KEYS = ("api_key", "apikey", "password", "secret")
COUNTER_KEYS = ("platforms", "retry_attempts", "retry_wait_seconds")
DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_WAIT = 5, 30.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]*")


class CounterConfigError(ValueError):
    """A `counter` setting that cannot be used (the library config's error type wraps it)."""


@dataclass(frozen=True)
class SushiPlatform:
    name: str                      # the library's name for it; the landing files are named after it
    base_url: str                  # the SUSHI server's base, to which /status and /reports/tr are added
    release: str                   # "5" or "5.1"
    customer_id: str
    requestor_id: str | None = None
    platform: str | None = None    # the `platform` parameter, for servers holding several platforms
    reports: tuple[str, ...] = DEFAULT_REPORTS
    api_key_env: str | None = None
    api_key_file: str | None = None
    months_per_request: int = 12   # a longer range is asked for in pieces of this many months

    @property
    def file_stem(self) -> str:
        """The platform as the landing file names spell it (no underscore: it separates the name's parts)."""
        return re.sub(r"[^A-Za-z0-9.-]+", "-", self.name).strip("-")

    def api_key(self, secrets_dir: Path) -> str | None:
        """The API key, from its environment variable or its file (relative to the home's secrets folder)."""
        if self.api_key_env:
            value = os.environ.get(self.api_key_env, "").strip()
            if not value:
                raise CounterConfigError(f"platform {self.name}: the environment variable {self.api_key_env} "
                                         "(api_key_env) is not set; export the platform's API key in it.")
            return value
        if self.api_key_file:
            path = Path(self.api_key_file)
            path = path if path.is_absolute() else secrets_dir / path
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CounterConfigError(f"platform {self.name}: cannot read the API key file {path} "
                                         f"(api_key_file): {exc.strerror}.") from None
            if not value:
                raise CounterConfigError(f"platform {self.name}: the API key file {path} is empty.")
            return value
        return None


@dataclass(frozen=True)
class CounterSettings:
    platforms: tuple[SushiPlatform, ...] = ()
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS       # tries of one request answered "queued" or "busy"
    retry_wait_seconds: float = DEFAULT_RETRY_WAIT     # the first wait; it doubles after each try

    def platform(self, name: str) -> SushiPlatform:
        for p in self.platforms:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.platforms) or "none is configured (counter.platforms)"
        raise CounterConfigError(f"no COUNTER platform named {name!r}; the library config has: {known}.")


def _text(value, where: str, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise CounterConfigError(f"`{where}` is missing; add it.")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise CounterConfigError(f"`{where}` = {value!r} must be text.")
    return str(value).strip()


def _platform(i: int, data, names: set[str]) -> SushiPlatform:
    where = f"counter.platforms[{i}]"
    if not isinstance(data, dict):
        raise CounterConfigError(f"`{where}` must be a mapping (name, base_url, release, customer_id, reports …).")
    for key in data:
        if str(key).lower() in SECRET_KEYS:
            raise CounterConfigError(f"`{where}.{key}`: secrets do not belong in the library config; put the key in "
                                     "an environment variable named by `api_key_env`, or in a file named by "
                                     "`api_key_file`, and remove it from the config.")
        if key not in PLATFORM_KEYS:
            raise CounterConfigError(f"`{where}.{key}` is not a setting; use {', '.join(PLATFORM_KEYS)}.")
    name = _text(data.get("name"), f"{where}.name")
    if not _NAME.fullmatch(name):
        raise CounterConfigError(f"`{where}.name` = {name!r}: use letters, digits, spaces and . _ ( ) - only.")
    if name in names:
        raise CounterConfigError(f"`{where}.name`: platform {name!r} is configured twice; keep one.")
    url = _text(data.get("base_url"), f"{where}.base_url").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise CounterConfigError(f"`{where}.base_url` = {url!r} is not the URL of a SUSHI server "
                                 "(e.g. https://sushi.example.org/counter/r51), without a query.")
    release = _text(data.get("release"), f"{where}.release")
    if release not in RELEASES:
        raise CounterConfigError(f"`{where}.release` = {release!r}: use 5 or 5.1 (quote it: '5.1').")
    reports = data.get("reports", list(DEFAULT_REPORTS))
    if isinstance(reports, str):
        reports = [reports]
    if not isinstance(reports, list) or not reports:
        raise CounterConfigError(f"`{where}.reports` must be a list of report ids, e.g. [PR, DR, TR].")
    ids = tuple(dict.fromkeys(str(r).strip().upper() for r in reports))
    if unknown := [r for r in ids if r not in REPORT_IDS]:
        raise CounterConfigError(f"`{where}.reports`: {', '.join(unknown)} is not a COUNTER report; "
                                 f"use {', '.join(REPORT_IDS)}.")
    if data.get("api_key_env") and data.get("api_key_file"):
        raise CounterConfigError(f"`{where}`: give either api_key_env or api_key_file, not both.")
    env = _text(data.get("api_key_env"), f"{where}.api_key_env", required=False)
    if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise CounterConfigError(f"`{where}.api_key_env` = {env!r} is not an environment variable name.")
    months = data.get("months_per_request", 12)
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
        raise CounterConfigError(f"`{where}.months_per_request` = {months!r} must be a whole number from 1 to 120.")
    return SushiPlatform(
        name=name, base_url=url, release=release, customer_id=_text(data.get("customer_id"), f"{where}.customer_id"),
        requestor_id=_text(data.get("requestor_id"), f"{where}.requestor_id", required=False),
        platform=_text(data.get("platform"), f"{where}.platform", required=False), reports=ids, api_key_env=env,
        api_key_file=_text(data.get("api_key_file"), f"{where}.api_key_file", required=False),
        months_per_request=months)


def counter_settings(section) -> CounterSettings:
    """The `counter` section of the library config (absent: nothing is harvested)."""
    if section is None:
        return CounterSettings()
    if not isinstance(section, dict):
        raise CounterConfigError(f"`counter` must be a mapping with keys {', '.join(COUNTER_KEYS)}.")
    for key in section:
        if key not in COUNTER_KEYS:
            raise CounterConfigError(f"`counter.{key}` is not a setting; use {', '.join(COUNTER_KEYS)}.")
    platforms = section.get("platforms") or []
    if not isinstance(platforms, list):
        raise CounterConfigError("`counter.platforms` must be a list of platforms.")
    names: set[str] = set()
    parsed = []
    for i, data in enumerate(platforms):
        platform = _platform(i, data, names)
        names.add(platform.name)
        parsed.append(platform)
    attempts = section.get("retry_attempts", DEFAULT_RETRY_ATTEMPTS)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise CounterConfigError(f"`counter.retry_attempts` = {attempts!r} must be a whole number from 1 to 20.")
    wait = section.get("retry_wait_seconds", DEFAULT_RETRY_WAIT)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 3600:
        raise CounterConfigError(f"`counter.retry_wait_seconds` = {wait!r} must be a number of seconds from 0 to 3600.")
    return CounterSettings(tuple(parsed), attempts, float(wait))
