"""The library config: branches, zones and seats, gates, hours, calendar, timezone.

One YAML file describes the library (``config/library.yaml`` for the demo). It is read
once per run into frozen dataclasses; a mistake names the file and the key to fix.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from warehouse.counter_platforms import CounterConfigError, CounterSettings, counter_settings
from warehouse.limits import LandingLimits, LimitError, parse_limits

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The landing folder of EZproxy logs; `ezproxy.folders` keys are this folder or folders under it.
EZPROXY_FOLDER = "ezproxy"
DEFAULT_LOG_FORMAT = '%h %l %u %t "%r" %s %b'
EZPROXY_KEYS = ("log_format", "folders", "platforms", "rules", "proxy_hosts")
FOLIO_KEYS = ("service_points", "default_branch")
_HOST_SUFFIX = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class LibraryConfigError(ValueError):
    """The library config is missing a key or holds a value that cannot be used."""


@dataclass(frozen=True)
class Zone:
    code: str
    name: str
    branch_code: str
    seats: int
    gates: tuple[str, ...]
    sensors: tuple[str, ...]


@dataclass(frozen=True)
class Branch:
    code: str
    name: str
    campus: str
    opened: dt.date
    zones: tuple[Zone, ...]


@dataclass(frozen=True)
class Hours:
    open: dt.time
    close: dt.time


@dataclass(frozen=True)
class Term:
    name: str
    start: dt.date
    end: dt.date
    exam_weeks: tuple[dt.date, ...]  # Mondays


@dataclass(frozen=True)
class Holiday:
    name: str
    start: dt.date
    end: dt.date


DEFAULT_SENSITIVE_CLASSES = ("B9", "D", "R")
DEFAULT_MAX_QUARANTINED_SHARE = 0.5


@dataclass(frozen=True)
class ServiceStandard:
    transactions_per_staff_hour: float = 20
    entries_per_staff_hour: float = 150
    minimum_staff: int = 1


def _service_standard(data: dict, path: Path) -> ServiceStandard:
    section = data.get("service_standard") or {}
    known = ServiceStandard.__dataclass_fields__
    unknown = [k for k in section if k not in known] if isinstance(section, dict) else ["(not a mapping)"]
    if unknown:
        raise LibraryConfigError(f"{path}: `service_standard` has {', '.join(map(str, unknown))}; "
                                 f"use {', '.join(known)}.")
    values = {}
    for key, value in section.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < (0 if key == "minimum_staff" else 1):
            raise LibraryConfigError(f"{path}: `service_standard.{key}` = {value!r} is not a positive number.")
        values[key] = int(value) if key == "minimum_staff" else float(value)
    return ServiceStandard(**values)


def _sensitive_classes(data: dict, path: Path) -> tuple[str, ...]:
    value = data.get("sensitive_classes", list(DEFAULT_SENSITIVE_CLASSES))
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise LibraryConfigError(f"{path}: `sensitive_classes` = {value!r} is not a list of CLC class prefixes "
                                 "(e.g. [B9, D, R]).")
    return tuple(re.sub(r"[^0-9A-Z]", "", v.upper()) for v in value)


@dataclass(frozen=True)
class Library:
    name: str
    short_name: str
    timezone: str
    card_number_pattern: str
    branches: tuple[Branch, ...]
    opening_hours: dict[str, Hours]
    terms: tuple[Term, ...]
    holidays: tuple[Holiday, ...]
    loan_periods: dict[str, int]
    ezproxy_log_format: str
    partitions_start: dt.date
    # Folder under landing (`ezproxy/proxy2`) → the LogFormat of the logs in it and below it.
    ezproxy_folders: dict[str, str] = field(default_factory=dict)
    # Host suffix → platform name, laid over assets/eresources/platforms.yaml (these win).
    ezproxy_platforms: dict[str, str] = field(default_factory=dict)
    # A folder of the library's own platform rules (YAML), laid over assets/eresources/platform_rules/.
    ezproxy_rules: Path | None = None
    # Host names of the proxy itself (`ezproxy.univ.edu`): its login, menu and starting-point pages.
    ezproxy_proxy_hosts: tuple[str, ...] = ()
    # Desk staffing: what one staff member handles in an hour (marts.desk_staffing).
    service_standard: ServiceStandard = field(default_factory=lambda: ServiceStandard())
    # CLC class prefixes never used for reader profiles or recommendations (religion, politics, medicine).
    sensitive_classes: tuple[str, ...] = DEFAULT_SENSITIVE_CLASSES
    # A landing file with more than this share of its lines quarantined is refused whole: it is
    # most likely not the export it is named as, and the partition it would replace is kept.
    max_quarantined_share: float = DEFAULT_MAX_QUARANTINED_SHARE
    # FOLIO service point (its code or UUID) → branch code, where the two are not the same code.
    folio_service_points: dict[str, str] = field(default_factory=dict)
    # The branch of a FOLIO record that names no service point (loans from before FOLIO had them).
    folio_default_branch: str | None = None
    # The COUNTER_SUSHI platforms `shuku harvest` asks for reports (warehouse/counter_platforms.py).
    counter: CounterSettings = field(default_factory=CounterSettings)
    # The longest line, the largest file and JSON answer read from landing (warehouse/limits.py).
    landing_limits: LandingLimits = field(default_factory=LandingLimits)
    source: Path = field(default=Path("."), compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def zones(self) -> tuple[Zone, ...]:
        return tuple(z for b in self.branches for z in b.zones)

    @property
    def seat_capacity(self) -> int:
        return sum(z.seats for z in self.zones)

    def gate_zone(self) -> dict[str, Zone]:
        """Gate code → the zone it counts."""
        return {g: z for z in self.zones for g in z.gates}

    def sensor_zone(self) -> dict[str, Zone]:
        return {s: z for z in self.zones for s in z.sensors}

    def hours_on(self, day: dt.date) -> Hours:
        return self.opening_hours.get(WEEKDAYS[day.weekday()], self.opening_hours["default"])

    def is_holiday(self, day: dt.date) -> bool:
        return any(h.start <= day <= h.end for h in self.holidays)

    def term_of(self, day: dt.date) -> Term | None:
        return next((t for t in self.terms if t.start <= day <= t.end), None)

    def is_exam_week(self, day: dt.date) -> bool:
        monday = day - dt.timedelta(days=day.weekday())
        return any(monday in t.exam_weeks for t in self.terms)

    def card_regex(self) -> re.Pattern[str]:
        return re.compile(self.card_number_pattern)

    def ezproxy_folder_for(self, folder: str) -> str | None:
        """The `ezproxy.folders` key holding ``folder`` (relative to landing), the deepest one; None if none does."""
        parts = PurePosixPath(folder).parts
        holding = [k for k in self.ezproxy_folders if parts[:len(PurePosixPath(k).parts)] == PurePosixPath(k).parts]
        return max(holding, key=lambda k: len(PurePosixPath(k).parts), default=None)

    def ezproxy_log_format_for(self, folder: str) -> str:
        """The LogFormat of the EZproxy logs in ``folder`` (relative to landing, e.g. `ezproxy/proxy2`)."""
        key = self.ezproxy_folder_for(folder)
        return self.ezproxy_folders[key] if key is not None else self.ezproxy_log_format


def _need(data: dict, key: str, where: str, path: Path):
    if not isinstance(data, dict) or key not in data:
        raise LibraryConfigError(f"{path}: `{where}{key}` is missing; add it (see config/library.yaml).")
    return data[key]


def _date(value, where: str, path: Path) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise LibraryConfigError(f"{path}: `{where}` = {value!r} is not a date (YYYY-MM-DD).") from None


def _time(value, where: str, path: Path) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise LibraryConfigError(f"{path}: `{where}` = {value!r} is not a time (HH:MM).") from None


def _folio(data: dict, path: Path, branch_codes: set[str]) -> tuple[dict[str, str], str | None]:
    """(service point → branch, default branch) from the `folio` section; every value a branch code."""
    section = data.get("folio") or {}
    if not isinstance(section, dict) or any(key not in FOLIO_KEYS for key in section):
        raise LibraryConfigError(f"{path}: `folio` must be a mapping with keys {', '.join(FOLIO_KEYS)}.")
    points = section.get("service_points") or {}
    if not isinstance(points, dict):
        raise LibraryConfigError(f"{path}: `folio.service_points` must map FOLIO service point codes to branch codes.")
    default = section.get("default_branch")
    named = {f"folio.service_points[{k!r}]": v for k, v in points.items()}
    if default is not None:
        named["folio.default_branch"] = default
    for where, code in named.items():
        if str(code) not in branch_codes:
            raise LibraryConfigError(f"{path}: `{where}` = {code!r} is not a branch code ({', '.join(sorted(branch_codes))}).")
    return {str(k): str(v) for k, v in points.items()}, None if default is None else str(default)


def _ezproxy(data: dict, path: Path) -> tuple[str, dict[str, str], dict[str, str], Path | None, tuple[str, ...]]:
    """(default LogFormat, folder → LogFormat, host suffix → platform, platform rules folder, the
    proxy's own host names) from the `ezproxy` section."""
    section = data.get("ezproxy") or {}
    if not isinstance(section, dict):
        raise LibraryConfigError(f"{path}: `ezproxy` must be a mapping with keys {', '.join(EZPROXY_KEYS)}.")
    for key in section:
        if key not in EZPROXY_KEYS:
            raise LibraryConfigError(f"{path}: `ezproxy.{key}` is not a setting; use {', '.join(EZPROXY_KEYS)}.")

    def log_format(value, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise LibraryConfigError(f"{path}: `{where}` = {value!r} is not a LogFormat string "
                                     f"(copy the LogFormat line of ezproxy.cfg, e.g. '{DEFAULT_LOG_FORMAT}').")
        return value

    def mapping(key: str) -> dict:
        value = section.get(key) or {}
        if not isinstance(value, dict):
            raise LibraryConfigError(f"{path}: `ezproxy.{key}` must be a mapping, not {type(value).__name__}.")
        return value

    default = log_format(section.get("log_format", DEFAULT_LOG_FORMAT), "ezproxy.log_format")
    folders: dict[str, str] = {}
    for key, value in mapping("folders").items():
        where = f"ezproxy.folders[{key!r}]"
        folder = PurePosixPath(str(key).strip())
        if folder.is_absolute() or ".." in folder.parts or folder.parts[:1] != (EZPROXY_FOLDER,):
            raise LibraryConfigError(
                f"{path}: `{where}`: {key!r} is not a folder under landing/{EZPROXY_FOLDER}; "
                f"write it relative to the landing folder, e.g. '{EZPROXY_FOLDER}/proxy2'.")
        if str(folder) in folders:
            raise LibraryConfigError(f"{path}: `{where}`: folder {str(folder)!r} is configured twice; keep one.")
        folders[str(folder)] = log_format(value, where)
    platforms: dict[str, str] = {}
    for suffix, name in mapping("platforms").items():
        where = f"ezproxy.platforms[{suffix!r}]"
        host = str(suffix).strip().strip(".").lower()
        if not _HOST_SUFFIX.fullmatch(host):
            raise LibraryConfigError(f"{path}: `{where}`: {suffix!r} is not a host name suffix (e.g. 'oup.com').")
        if not isinstance(name, str) or not name.strip():
            raise LibraryConfigError(f"{path}: `{where}` = {name!r}: give the platform's name as text.")
        platforms[host] = name.strip()
    rules = section.get("rules")
    if rules is not None:
        if not isinstance(rules, str) or not rules.strip():
            raise LibraryConfigError(f"{path}: `ezproxy.rules` = {rules!r}: give the folder of your platform rules "
                                     f"(YAML files), e.g. 'platform_rules'.")
        rules = (path.parent / rules.strip()).resolve()
        if not rules.is_dir():
            raise LibraryConfigError(f"{path}: `ezproxy.rules`: {rules} is not a folder; create it or fix the path "
                                     f"(relative to the library config).")
    proxy_hosts = section.get("proxy_hosts") or []
    if isinstance(proxy_hosts, str):
        proxy_hosts = [proxy_hosts]
    if not isinstance(proxy_hosts, list):
        raise LibraryConfigError(f"{path}: `ezproxy.proxy_hosts` must list the proxy's host names "
                                 f"(e.g. [ezproxy.univ.edu]), not {type(proxy_hosts).__name__}.")
    for i, host in enumerate(proxy_hosts):
        if not isinstance(host, str) or not _HOST_SUFFIX.fullmatch(host.strip().strip(".").lower()):
            raise LibraryConfigError(f"{path}: `ezproxy.proxy_hosts[{i}]` = {host!r} is not a host name "
                                     f"(e.g. 'ezproxy.univ.edu').")
    hosts = tuple(h.strip().strip(".").lower() for h in proxy_hosts)
    return default, folders, platforms, rules, hosts


def _landing_limits(data: dict, path: Path) -> LandingLimits:
    from schemas.vocabulary import SOURCES
    try:
        return parse_limits(data.get("landing_limits"), SOURCES, path)
    except LimitError as exc:
        raise LibraryConfigError(str(exc)) from None


def _share(value, key: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise LibraryConfigError(f"{path}: `{key}` = {value!r} must be a share between 0 and 1 (e.g. 0.5).")
    return float(value)


def load_library(path: Path) -> Library:
    """Read and check a library config file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LibraryConfigError(f"{path}: library config not found; set SHUKU_LIBRARY_CONFIG "
                                 "or copy config/library.yaml.") from None
    except yaml.YAMLError as exc:
        raise LibraryConfigError(f"{path}: not valid YAML: {exc}") from None
    tz = str(_need(data, "timezone", "", path))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise LibraryConfigError(f"{path}: `timezone` = {tz!r} is not an IANA time zone (e.g. Asia/Shanghai).") from None
    branches = []
    seen_codes: set[str] = set()
    for i, b in enumerate(_need(data, "branches", "", path)):
        where = f"branches[{i}]."
        zones = []
        for j, z in enumerate(_need(b, "zones", where, path)):
            zw = f"{where}zones[{j}]."
            seats = _need(z, "seats", zw, path)
            if not isinstance(seats, int) or seats < 0:
                raise LibraryConfigError(f"{path}: `{zw}seats` = {seats!r} must be a whole number ≥ 0.")
            zone = Zone(code=str(_need(z, "code", zw, path)), name=str(z.get("name", "")),
                        branch_code=str(_need(b, "code", where, path)), seats=seats,
                        gates=tuple(z.get("gates", ())), sensors=tuple(z.get("sensors", ())))
            for code in (zone.code, *zone.gates, *zone.sensors):
                if code in seen_codes:
                    raise LibraryConfigError(f"{path}: code {code!r} at `{zw}` is declared twice; codes must be unique.")
                seen_codes.add(code)
            zones.append(zone)
        branches.append(Branch(code=str(b["code"]), name=str(b.get("name", b["code"])),
                               campus=str(b.get("campus", "")),
                               opened=_date(b.get("opened", "1900-01-01"), f"{where}opened", path),
                               zones=tuple(zones)))
    hours_data = _need(data, "opening_hours", "", path)
    _need(hours_data, "default", "opening_hours.", path)
    hours = {}
    for day, h in hours_data.items():
        if day != "default" and day not in WEEKDAYS:
            raise LibraryConfigError(f"{path}: `opening_hours.{day}` is not one of default, {', '.join(WEEKDAYS)}.")
        hours[day] = Hours(open=_time(h["open"], f"opening_hours.{day}.open", path),
                           close=_time(h["close"], f"opening_hours.{day}.close", path))
    cal = data.get("calendar", {}) or {}
    terms = tuple(
        Term(name=str(t["name"]), start=_date(t["start"], f"calendar.terms[{i}].start", path),
             end=_date(t["end"], f"calendar.terms[{i}].end", path),
             exam_weeks=tuple(_date(w, f"calendar.terms[{i}].exam_weeks", path) for w in t.get("exam_weeks", ())))
        for i, t in enumerate(cal.get("terms", ()))
    )
    holidays = tuple(
        Holiday(name=str(h["name"]), start=_date(h["start"], f"calendar.holidays[{i}].start", path),
                end=_date(h["end"], f"calendar.holidays[{i}].end", path))
        for i, h in enumerate(cal.get("holidays", ()))
    )
    pattern = str(_need(data, "card_number_pattern", "", path))
    try:
        re.compile(pattern)
    except re.error as exc:
        raise LibraryConfigError(f"{path}: `card_number_pattern` is not a regular expression: {exc}") from None
    log_format, folders, platforms, rules, proxy_hosts = _ezproxy(data, path)
    folio_points, folio_default = _folio(data, path, {b.code for b in branches})
    try:
        counter = counter_settings(data.get("counter"))
    except CounterConfigError as exc:
        raise LibraryConfigError(f"{path}: {exc}") from None
    return Library(
        name=str(_need(data, "name", "", path)), short_name=str(data.get("short_name", "")),
        timezone=tz, card_number_pattern=pattern, branches=tuple(branches), opening_hours=hours,
        terms=terms, holidays=holidays, loan_periods=dict(data.get("loan_periods", {})),
        ezproxy_log_format=log_format, ezproxy_folders=folders, ezproxy_platforms=platforms,
        ezproxy_rules=rules, ezproxy_proxy_hosts=proxy_hosts,
        service_standard=_service_standard(data, path), sensitive_classes=_sensitive_classes(data, path),
        partitions_start=_date(data.get("partitions_start", "2024-09-01"), "partitions_start", path),
        max_quarantined_share=_share(data.get("max_quarantined_share", DEFAULT_MAX_QUARANTINED_SHARE),
                                     "max_quarantined_share", path),
        landing_limits=_landing_limits(data, path),
        folio_service_points=folio_points, folio_default_branch=folio_default, counter=counter, source=path,
    )
