"""The ground truth of a generated library: what happened, written beside the landing files.

Tests and benchmarks compare the published figures with it, not with the pipeline's own
SQL. It is never an input of the pipeline. One Parquet file per source and day (COUNTER:
per month) under `<home>/truth/`, described in docs/LANDING.md. Readers appear only as the
generator's reader index, never as a card number or a name. Each event says whether its
landing line was left `intact`: a line the generator damaged is rejected by the parsers, so
what the pipeline should count is the truth's intact events.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from warehouse.library import Library

from . import vocab
from .population import FIRST_ITEMNUMBER, Catalogue, Patrons

REPEAT_SECONDS = 30    # COUNTER: the same request by the same user within 30 s counts once


def _stamps(date: dt.date, secs: np.ndarray) -> pl.Series:
    """Seconds of `date` → local timestamps (as the landing files write them)."""
    base = np.datetime64(date.isoformat(), "us")
    return pl.Series("at", base + (np.asarray(secs, np.int64) * 1_000_000).astype("timedelta64[us]"))


def counted_accesses(user: np.ndarray, url: np.ndarray, secs: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Which of the requests in `among` count as accesses: a repeat of the same URL by the same
    user within REPEAT_SECONDS of the previous one is a double click and does not."""
    idx = np.flatnonzero(among)
    order = idx[np.lexsort((secs[idx], url[idx], user[idx]))]
    u, r, s = user[order], url[order], secs[order]
    repeat = (u[1:] == u[:-1]) & (r[1:] == r[:-1]) & (s[1:] - s[:-1] <= REPEAT_SECONDS)
    out = np.zeros(len(among), bool)
    out[order] = np.concatenate([[True], ~repeat]) if len(order) else []
    return out


def zone_hours(date: dt.date, visits: dict[str, np.ndarray]) -> pl.DataFrame:
    """Per zone and hour: entries, exits and the peak of the people inside at any moment of
    the hour (a visitor is inside from the second of entry until the second of exit)."""
    frames = []
    for zone in np.unique(visits["zone"]):
        sel = visits["zone"] == zone
        t_in, t_out = visits["t_in"][sel], visits["t_out"][sel]
        times = np.concatenate([t_in, t_out])
        step = np.concatenate([np.ones(len(t_in), np.int64), -np.ones(len(t_out), np.int64)])
        order = np.lexsort((step, times))           # at one second, who leaves goes before who enters
        times, level = times[order], np.cumsum(step[order])
        hours = np.arange(times[0] // 3600, times[-1] // 3600 + 1)
        # Inside when the hour begins: everyone in before it, less everyone out before it.
        before = np.searchsorted(times, hours * 3600, side="left")
        start = np.where(before > 0, level[np.maximum(before - 1, 0)], 0)
        hour_of = times // 3600 - hours[0]
        peak = start.copy()
        np.maximum.at(peak, hour_of, level)
        frames.append(pl.DataFrame({
            "event_date": [date] * len(hours), "event_hour": hours, "zone_code": [str(zone)] * len(hours),
            "entries": np.bincount(t_in // 3600 - hours[0], minlength=len(hours)),
            "exits": np.bincount(t_out // 3600 - hours[0], minlength=len(hours)),
            "occupancy_at_start": start, "occupancy_peak": peak}))
    return pl.concat(frames) if frames else pl.DataFrame()


class Truth:
    """Writes the truth files of one generation run under `root`."""

    def __init__(self, root: Path, library: Library, patrons: Patrons, cat: Catalogue):
        self.root = Path(root)
        self.library, self.patrons, self.cat = library, patrons, cat
        for sub in ("circulation", "gates", "opac", "ezproxy", "counter"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _write(self, rel: str, frame: pl.DataFrame) -> None:
        frame.write_parquet(self.root / rel, compression="zstd", statistics=False)

    def loans(self, date: dt.date, issues: dict[str, np.ndarray], damaged: np.ndarray) -> None:
        """One row per loan issued: when, which item and title, the reader index, the
        reader's category, the branch, and whether its issue line is intact."""
        item, reader = issues["item"], issues["reader"]
        branches = np.array([b.code for b in self.library.branches])
        self._write(f"circulation/loans_{date}.parquet", pl.DataFrame({
            "issued_at": _stamps(date, issues["secs"]),
            "item_number": FIRST_ITEMNUMBER + item,
            "bib_id": self.cat.control_number(self.cat.item_title[item]).astype(str),
            "reader": reader.astype(np.int32),
            "category_code": np.array(vocab.CATEGORIES)[self.patrons.category[reader]],
            "branch_code": branches[self.cat.item_branch[item]],
            "intact": ~damaged[issues["pos"]],
        }, schema_overrides={"bib_id": pl.Utf8, "category_code": pl.Utf8, "branch_code": pl.Utf8}))

    def gates(self, date: dt.date, passages: dict[str, np.ndarray], visits: dict[str, np.ndarray],
              kept: np.ndarray, damaged: np.ndarray) -> None:
        """One row per turnstile line (IN and OUT passes, refused swipes) with its zone, reader
        index and intactness; and per zone and hour the true entries, exits and peak."""
        self._write(f"gates/passages_{date}.parquet", pl.DataFrame({
            "at": _stamps(date, passages["secs"][kept]),
            "zone_code": passages["zone"][kept].astype(str),
            "direction": np.array(vocab.GATE_DIRECTIONS)[passages["direction"][kept]],
            "result": np.array(vocab.GATE_RESULTS)[passages["result"][kept]],
            "reader": passages["reader"][kept].astype(np.int32),
            "intact": ~damaged,
        }))
        self._write(f"gates/zone_hours_{date}.parquet", zone_hours(date, visits))

    def searches(self, date: dt.date, searches: dict[str, np.ndarray], kept: np.ndarray, damaged: np.ndarray) -> None:
        """One row per OPAC search: when, its hit count and whether its line is intact."""
        self._write(f"opac/searches_{date}.parquet", pl.DataFrame({
            "at": _stamps(date, searches["secs"][kept]), "hits": searches["hits"][kept], "intact": ~damaged}))

    def ezproxy(self, date: dt.date, requests: dict[str, np.ndarray], kept: np.ndarray, damaged: np.ndarray) -> None:
        """Per platform and hour: request lines, accesses (COUNTER rules: no static files, no
        failures, no double clicks) and the accesses the intact lines alone show (a repeat
        whose first request was damaged counts there)."""
        r = {k: v[kept] for k, v in requests.items()}
        intact = ~damaged
        accesses = counted_accesses(r["reader"], r["url"], r["secs"], r["access"])
        delivered = counted_accesses(r["reader"], r["url"], r["secs"], r["access"] & intact)
        names = pl.Series([p.name for p in vocab.PLATFORMS])
        frame = pl.DataFrame({"platform": names.gather(r["platform"]), "event_hour": r["secs"] // 3600,
                              "intact": intact, "access": accesses, "delivered": delivered})
        self._write(f"ezproxy/accesses_{date}.parquet", frame.group_by("platform", "event_hour").agg(
            pl.len().cast(pl.Int64).alias("requests"), pl.col("intact").sum().cast(pl.Int64).alias("intact_requests"),
            pl.col("access").sum().cast(pl.Int64).alias("accesses"),
            pl.col("delivered").sum().cast(pl.Int64).alias("accesses_delivered"),
        ).with_columns(event_date=pl.lit(date)).sort("platform", "event_hour"))

    def counter(self, month: dt.date, rows: list[dict]) -> None:
        """COUNTER usage of the month per level (platform, database, title) and metric."""
        self._write(f"counter/usage_{month:%Y-%m}.parquet", pl.DataFrame(
            rows, schema={"level": pl.Utf8, "platform": pl.Utf8, "name": pl.Utf8, "metric": pl.Utf8,
                          "value": pl.Int64}).with_columns(usage_month=pl.lit(month)))
