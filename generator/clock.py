"""Time in the synthetic library: seasons from the calendar, daily traffic curves, and
fast formatting of many timestamps at once."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from warehouse.library import Library

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# All 86,400 "HH:MM:SS" strings, so formatting a column of seconds is one gather.
HMS = pl.Series("hms", [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)])

# Relative traffic by hour of day. In the building: a morning ramp, a lunch dip and an
# evening peak of students studying. Online: the same shape, but late into the night.
_BUILDING = np.array([0, 0, 0, 0, 0, 0, 0, 0.3, 1.6, 2.0, 1.7, 1.3, 0.7, 0.9, 1.6, 1.5, 1.2, 0.8,
                      0.9, 1.5, 1.2, 0.6, 0.2, 0], dtype=float)
_ONLINE = np.array([0.35, 0.2, 0.1, 0.05, 0.04, 0.05, 0.12, 0.3, 0.8, 1.3, 1.5, 1.3, 0.8, 0.9, 1.3, 1.4,
                    1.3, 1.0, 0.8, 1.1, 1.4, 1.5, 1.2, 0.7], dtype=float)


def seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def day_season(library: Library, day: dt.date) -> dict[str, float]:
    """How busy each kind of service is on `day`, relative to a term weekday (0 = closed)."""
    if library.is_holiday(day):
        return {"building": 0.0, "online": 0.45}
    weekend = day.weekday() >= 5
    if library.term_of(day) is None:          # vacation: few readers on campus
        building, online = 0.3, 0.55
    elif library.is_exam_week(day):           # exam weeks fill the reading rooms
        building, online = 1.45, 1.2
    else:
        building, online = 1.0, 1.0
    if weekend:
        building, online = building * 0.75, online * 0.8
    return {"building": building, "online": online}


def _minute_weights(curve: np.ndarray, open_s: int, close_s: int) -> np.ndarray:
    minutes = np.arange(1440)
    hours = minutes / 60.0
    w = np.interp(hours, np.arange(24) + 0.5, curve, period=24)
    w[(minutes * 60 < open_s) | (minutes * 60 >= close_s)] = 0.0
    return w


def draw_seconds(rng: np.random.Generator, n: int, open_s: int = 0, close_s: int = 86_400,
                 online: bool = False) -> np.ndarray:
    """`n` times of day (seconds) between open and close, following the daily curve."""
    w = _minute_weights(_ONLINE if online else _BUILDING, open_s, close_s)
    if w.sum() == 0:
        w[open_s // 60:max(open_s // 60 + 1, close_s // 60)] = 1.0
    cum = np.cumsum(w)
    minute = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
    secs = minute * 60 + rng.integers(0, 60, n)
    return np.clip(secs, open_s, close_s - 1).astype(np.int64)


def hms(secs: np.ndarray) -> pl.Series:
    """Seconds of day → "HH:MM:SS" strings."""
    return HMS.gather(np.asarray(secs, dtype=np.int64))


def utc_offset(library: Library, day: dt.date) -> str:
    """The `+0800` of an EZproxy `%t` on that day."""
    off = dt.datetime.combine(day, dt.time(12), library.tz).utcoffset() or dt.timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return f"{sign}{abs(mins) // 60:02d}{abs(mins) % 60:02d}"
