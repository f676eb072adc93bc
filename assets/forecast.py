"""Seat demand per branch and hour: a model a librarian can follow, and its honest back-test.

The model: demand(day, hour) = profile(weekday, hour) × factor(kind of day), where the kind
is term, exam week, vacation or holiday (closed: 0). Profile and factors are fitted in turn
by least squares (a few alternating passes); a factor the training data never saw stays 1.
Prediction intervals come from the in-sample residuals scaled by sqrt(forecast + 1), as for
counts. The baseline it must beat is the naive seasonal forecast: the same weekday and hour
in the last week before the origin.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

KINDS = ("term", "exam", "vacation", "holiday")
MODEL, NAIVE = "profile_calendar", "naive_seasonal"
HORIZON_DAYS = 14          # the future forecast
BACKTEST_HORIZON = 7       # days scored after each back-test origin
ORIGIN_STEP = 3            # days between back-test origins
SEASON = 7                 # a week
PROFILE_WEEKS = 4          # the profile reads this many weeks before the origin
INTERVAL = (0.1, 0.9)      # 80 % prediction interval
FIT_PASSES = 4
POISSON_Z = 1.2816     # the normal quantile of INTERVAL's upper end


@dataclass(frozen=True)
class Calendar:
    """Days in order with what the model knows of each."""

    dates: list[dt.date]
    weekday: np.ndarray        # 0 = Monday
    kind: np.ndarray           # index into KINDS
    open_mask: np.ndarray      # (days, 24) bool: the library is open in that hour


@dataclass(frozen=True)
class Fit:
    profile: np.ndarray        # (7, 24)
    factors: np.ndarray        # (len(KINDS),)
    lower_z: float
    upper_z: float


def calendar_from(rows: pl.DataFrame) -> Calendar:
    """From core.dim_date rows (date_key, weekday, is_exam_week, is_holiday, term_name, open_hour, close_hour)."""
    rows = rows.sort("date_key")
    kind = np.array([3 if h else 1 if e else 2 if t is None else 0 for h, e, t in
                     zip(rows["is_holiday"], rows["is_exam_week"], rows["term_name"])], dtype=np.int64)
    hours = np.arange(24)
    open_h = rows["open_hour"].fill_null(0).to_numpy()[:, None]
    close_h = rows["close_hour"].fill_null(0).to_numpy()[:, None]
    return Calendar(rows["date_key"].to_list(), rows["weekday"].to_numpy() - 1, kind,
                    (hours >= open_h) & (hours < close_h) & (kind[:, None] != 3))


def _profile(y: np.ndarray, cal: Calendar, factors: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Mean of demand / its day's factor per weekday and hour over ``days`` (open days only)."""
    profile = np.full((7, 24), np.nan)
    usable = days[(cal.kind[days] != 3) & (factors[cal.kind[days]] > 0)]
    for wd in range(7):
        chosen = usable[cal.weekday[usable] == wd]
        if len(chosen):
            profile[wd] = (y[chosen] / factors[cal.kind[chosen]][:, None]).mean(axis=0)
    # A weekday never seen borrows the mean of its kind (weekday or weekend), else of all days.
    for wd in range(7):
        if np.isnan(profile[wd, 0]):
            same = [w for w in (range(5) if wd < 5 else range(5, 7)) if not np.isnan(profile[w, 0])]
            seen = same or [w for w in range(7) if not np.isnan(profile[w, 0])]
            profile[wd] = profile[seen].mean(axis=0) if seen else 0.0
    return profile


def fit(y: np.ndarray, cal: Calendar, last: int) -> Fit:
    """Fit on days 0..last (inclusive) of ``y`` (days × 24)."""
    days = np.arange(max(0, last + 1 - PROFILE_WEEKS * SEASON), last + 1)
    factors = np.ones(len(KINDS))
    factors[3] = 0.0
    for _ in range(FIT_PASSES):
        profile = _profile(y, cal, factors, days)
        base = profile[cal.weekday[days]] * cal.open_mask[days]
        for k in range(3):
            chosen = cal.kind[days] == k
            denominator = float((base[chosen] ** 2).sum())
            # Least squares through the origin: the factor that best scales the profile to the days of this kind.
            factors[k] = float((y[days][chosen] * base[chosen]).sum()) / denominator if denominator > 0 else 1.0
        if (cal.kind[days] == 0).any() and factors[0] > 0:
            profile, factors[:3] = profile * factors[0], factors[:3] / factors[0]
    profile = _profile(y, cal, factors, days)
    fitted = predict_with(profile, factors, cal, days)
    # A residual of a profile mean over k days is (k-1)/k of the error a new day would show,
    # so it is scaled back up; a weekday seen once tells nothing and is left out.
    open_days = days[cal.kind[days] != 3]
    seen = np.array([(cal.weekday[open_days] == cal.weekday[d]).sum() for d in days])
    usable = cal.open_mask[days] & (seen[:, None] > 1)
    inflate = np.where(seen > 1, seen / np.maximum(seen - 1, 1), 0.0)[:, None]
    z = ((y[days] - fitted) * inflate)[usable] / np.sqrt(fitted[usable] + 1.0)
    lower, upper = np.quantile(z, INTERVAL) if z.size else (0.0, 0.0)
    # Counts vary at least as a Poisson count does: the interval is never narrower than that.
    return Fit(profile, factors, float(min(lower, -POISSON_Z)), float(max(upper, POISSON_Z)))


def predict_with(profile: np.ndarray, factors: np.ndarray, cal: Calendar, days: np.ndarray) -> np.ndarray:
    return profile[cal.weekday[days]] * factors[cal.kind[days]][:, None] * cal.open_mask[days]


def forecast(model: Fit, cal: Calendar, days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forecast, lower, upper) for ``days``, each days × 24, never below zero."""
    mean = np.maximum(predict_with(model.profile, model.factors, cal, days), 0.0)
    spread = np.sqrt(mean + 1.0) * cal.open_mask[days]
    return mean, np.maximum(mean + model.lower_z * spread, 0.0), np.maximum(mean + model.upper_z * spread, 0.0)


def naive_seasonal(y: np.ndarray, last: int, days: np.ndarray) -> np.ndarray:
    """The same weekday and hour in the last week up to ``last``."""
    back = SEASON * np.ceil((days - last) / SEASON).astype(np.int64)
    return y[days - back]


def scores(actual: np.ndarray, predicted: np.ndarray, open_mask: np.ndarray) -> tuple[int, float | None, float | None]:
    """(hours scored, MAPE over open hours with demand, mean relative error of the daily peak)."""
    scored = open_mask & (actual > 0)
    mape = float(np.mean(np.abs(predicted[scored] - actual[scored]) / actual[scored])) if scored.any() else None
    peaks = actual.max(axis=1)
    days = peaks > 0
    peak = (float(np.mean(np.abs(predicted.max(axis=1)[days] - peaks[days]) / peaks[days])) if days.any() else None)
    return int(scored.sum()), mape, peak


def origins(n_days: int) -> list[int]:
    """Back-test origins: every ORIGIN_STEP days back from the last that leaves a day to score,
    each with at least a week of data behind it (the naive baseline needs one)."""
    return sorted(range(n_days - 2, SEASON - 2, -ORIGIN_STEP))


def backtest(y: np.ndarray, cal: Calendar) -> list[dict]:
    """One row per origin and method: MAPE, peak error and (model) interval coverage."""
    rows = []
    for last in origins(len(y)):
        days = np.arange(last + 1, min(last + 1 + BACKTEST_HORIZON, len(y)))
        model = fit(y, cal, last)
        mean, lower, upper = forecast(model, cal, days)
        actual, open_mask = y[days], cal.open_mask[days]
        inside = ((actual >= lower) & (actual <= upper))[open_mask]
        for method, predicted in ((MODEL, mean), (NAIVE, naive_seasonal(y, last, days))):
            hours, mape, peak = scores(actual, predicted, open_mask)
            rows.append({"origin": last, "method": method, "horizon_days": len(days), "hours_scored": hours,
                         "mape": mape, "peak_error": peak,
                         "interval_coverage": float(inside.mean()) if method == MODEL and inside.size else None})
    return rows


INPUT_SQL = """
select zones.branch_code, hours.event_date, hours.event_hour, sum(hours.occupancy_peak) as demand
from marts.space_utilisation as hours
inner join core.dim_zone as zones on zones.zone_code = hours.zone_code
group by zones.branch_code, hours.event_date, hours.event_hour
"""


def seat_demand_tables(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """marts.seat_demand_forecast and marts.seat_demand_backtest from the hourly occupancy."""
    demand = con.sql(INPUT_SQL).pl()
    seats = dict(con.execute("select branch_code, sum(seat_capacity) from core.dim_zone group by branch_code").fetchall())
    if demand.is_empty():
        return {"seat_demand_forecast": pl.DataFrame(), "seat_demand_backtest": pl.DataFrame()}
    first, last = demand["event_date"].min(), demand["event_date"].max()
    dates = con.sql("select date_key, weekday, is_exam_week, is_holiday, term_name, open_hour, close_hour "
                        "from core.dim_date where date_key between ? and ? order by date_key",
                        params=[first, last + dt.timedelta(days=HORIZON_DAYS)]).pl()
    cal = calendar_from(dates)
    index = {d: i for i, d in enumerate(cal.dates)}
    n_data = index[last] + 1
    forecasts, tests = [], []
    for branch in sorted(demand["branch_code"].unique()):
        rows = demand.filter(pl.col("branch_code") == branch)
        y = np.zeros((len(cal.dates), 24))
        y[[index[d] for d in rows["event_date"]], rows["event_hour"].to_numpy()] = rows["demand"].to_numpy()
        y = y[:n_data]
        future = np.arange(n_data, len(cal.dates))
        holdout_origin = max(n_data - 1 - BACKTEST_HORIZON, 0)
        holdout = np.arange(holdout_origin + 1, n_data)
        for period, origin, days in (("future", n_data - 1, future), ("holdout", holdout_origin, holdout)):
            if len(days) == 0:
                continue
            mean, lower, upper = forecast(fit(y, cal, origin), cal, days)
            d_idx, h_idx = np.nonzero(cal.open_mask[days])
            forecasts.append(pl.DataFrame({
                "origin_date": [cal.dates[origin]] * len(d_idx), "period": [period] * len(d_idx),
                "forecast_date": [cal.dates[days[i]] for i in d_idx], "event_hour": h_idx.astype(np.int64),
                "branch_code": [branch] * len(d_idx), "seat_capacity": [int(seats.get(branch, 0))] * len(d_idx),
                "day_kind": [KINDS[cal.kind[days[i]]] for i in d_idx],
                "demand_forecast": mean[d_idx, h_idx], "demand_lower": lower[d_idx, h_idx],
                "demand_upper": upper[d_idx, h_idx],
                "actual_demand": (y[days][d_idx, h_idx] if period == "holdout" else [None] * len(d_idx)),
            }, schema_overrides={"actual_demand": pl.Float64}))
        for row in backtest(y, cal):
            tests.append({"origin_date": cal.dates[row.pop("origin")], "branch_code": branch, **row})
    columns = ["origin_date", "branch_code", "method", "horizon_days", "hours_scored", "mape", "peak_error",
               "interval_coverage"]
    floats = {"mape": pl.Float64, "peak_error": pl.Float64, "interval_coverage": pl.Float64}
    return {"seat_demand_forecast": pl.concat(forecasts) if forecasts else pl.DataFrame(),
            "seat_demand_backtest": pl.DataFrame(tests, schema_overrides=floats).select(columns) if tests else pl.DataFrame()}
