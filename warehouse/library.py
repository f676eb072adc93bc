"""The library config: branches, zones and seats, gates, hours, calendar, timezone.

One YAML file describes the library (``config/library.yaml`` for the demo). It is read
once per run into frozen dataclasses; a mistake names the file and the key to fix.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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


def load_library(path: Path) -> Library:
    """Read and check a library config file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LibraryConfigError(f"{path}: library config not found; set SHUKU_LIBRARY_CONFIG or copy config/library.yaml.") from None
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
    return Library(
        name=str(_need(data, "name", "", path)), short_name=str(data.get("short_name", "")),
        timezone=tz, card_number_pattern=pattern, branches=tuple(branches), opening_hours=hours,
        terms=terms, holidays=holidays, loan_periods=dict(data.get("loan_periods", {})),
        ezproxy_log_format=str((data.get("ezproxy") or {}).get("log_format", '%h %l %u %t "%r" %s %b')),
        partitions_start=_date(data.get("partitions_start", "2024-09-01"), "partitions_start", path),
        source=path,
    )
