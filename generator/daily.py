"""One day of events per source: loans, gate events, OPAC searches (EZproxy: generator.eresources).

Each function draws whole columns with numpy and builds the lines with polars; the only
Python loops are per source, per discipline or per defect."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from warehouse.library import Library

from . import vocab
from .clock import draw_seconds, hms
from .population import (CCODES, COURSE_TITLES, COURSES_PER_DISCIPLINE, FIRST_ITEMNUMBER, ITEM_TYPES, LOCATIONS, N_DISC,
                         Catalogue, Patrons)
from .scales import Scale

UNKNOWN_ITEM_BASE = 9_000_000    # above every real itemnumber
HOLD_SHARE = 0.35               # readers who place a hold when every copy is out
COURSE_SHARE = 0.2               # loans in a reader's own discipline that come from a reading list


@dataclass
class Day:
    index: int
    date: dt.date
    building: float          # 0 when the library is closed
    online: float
    open_s: int
    close_s: int
    # Share of the loans of vocab.EBOOK_SHIFT_DISCIPLINE's titles that readers make online instead.
    ebook_shift: float = 0.0

    @property
    def stamp(self) -> str:
        return f"{self.date:%Y-%m-%d} "


@dataclass
class LoanBook:
    """Loans across days: which items are out, and the renewals and returns to come."""

    on_loan: np.ndarray
    # day index → list of (type, patron indices, item indices)
    pending: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = field(default_factory=dict)
    next_reserve_id: int = 1

    def schedule(self, day: int, kind: int, patron: np.ndarray, item: np.ndarray) -> None:
        for d in np.unique(day):
            sel = day == d
            self.pending.setdefault(int(d), []).append((kind, patron[sel], item[sel]))


def concat_lines(cols: list[pl.Expr], df: pl.DataFrame, sep: str = ",") -> list[str]:
    return df.select(pl.concat_str(cols, separator=sep).alias("line")).to_series().to_list()


def _copies_on_shelf(rng: np.random.Generator, title: np.ndarray, cat: Catalogue, book: LoanBook,
                     tries: int = 6) -> np.ndarray:
    """A lendable copy of each wanted title, or -1. A reader who finds every copy of a title
    out takes another title of the same discipline, up to `tries` times, so borrowing does not
    fall just because the popular books are on loan."""
    item = np.full(len(title), -1, np.int64)
    want = title.copy()
    todo = np.arange(len(title))
    for attempt in range(tries):
        pick = cat.item_start[want[todo]] + (rng.random(len(todo)) * cat.item_count[want[todo]]).astype(np.int64)
        free = (cat.item_location[pick] != 2) & ~book.on_loan[pick]
        item[todo[free]] = pick[free]
        todo = todo[~free]
        if len(todo) == 0 or attempt == tries - 1:
            break
        disc = cat.title_discipline[want[todo]].astype(np.int64)
        # The last tries go down the shelf: any title of the discipline, popular or not.
        want[todo] = cat.draw_titles(rng, disc, uniform=attempt >= tries - 3)
    return item


def _with_reading_lists(rng: np.random.Generator, reader: np.ndarray, title: np.ndarray, own: np.ndarray,
                        disc: np.ndarray, cat: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """Some readers borrowing in their own discipline take two or three titles of their course's
    reading list at once, which is what co-borrowing recommendations are made of."""
    course = np.flatnonzero((own >= 0) & (disc == own) & (rng.random(len(reader)) < COURSE_SHARE))
    if len(course) == 0:
        return reader, title
    who = reader[course]
    lists = cat.course_titles[own[course].astype(np.int64) * COURSES_PER_DISCIPLINE + who % COURSES_PER_DISCIPLINE]
    picks = np.argsort(rng.random((len(course), COURSE_TITLES)), axis=1)[:, :3]
    chosen = np.take_along_axis(lists, picks, axis=1)
    title = title.copy()
    title[course] = chosen[:, 0]
    take = rng.random((len(course), 2)) < (1.0, 0.5)     # a second title always, a third half the time
    extra_reader = np.repeat(who, take.sum(axis=1))
    extra_title = chosen[:, 1:][take]
    return np.concatenate([reader, extra_reader]), np.concatenate([title, extra_title])


def circulation_day(rng: np.random.Generator, day: Day, scale: Scale, library: Library, patrons: Patrons,
                    cat: Catalogue, book: LoanBook, next_open: np.ndarray, n_unknown: int
                    ) -> tuple[list[str], frozenset[int], list[str], dict[str, np.ndarray]]:
    """The day's Koha statistics lines (sorted by time), the positions of `unknown_item` lines,
    the holds lines, and the issues (line position, second, reader, item) for the ground truth."""
    due = book.pending.pop(day.index, [])
    if day.building == 0:
        # Closed: what was due today happens on the next open day.
        if due and next_open[day.index] < len(next_open):
            book.pending.setdefault(int(next_open[day.index]), []).extend(due)
        return [], frozenset(), [], {}
    kinds, who, what = [], [], []
    for kind, p, i in due:
        kinds.append(np.full(len(p), kind, np.int8))
        who.append(p)
        what.append(i)
    # Issues: readers borrow mostly in their own college's classes.
    n = int(rng.poisson(scale.loans * day.building))
    reader = patrons.draw(rng, "circulation", n)
    own = patrons.discipline[reader]
    disc = np.where((own >= 0) & (rng.random(n) < 0.7), own, rng.integers(0, N_DISC + 1, n))
    title = cat.draw_titles(rng, disc)
    reader, title = _with_reading_lists(rng, reader, title, own, disc, cat)
    if day.ebook_shift > 0:
        online = (cat.title_discipline[title] == vocab.EBOOK_SHIFT_DISCIPLINE) & (rng.random(len(title)) < day.ebook_shift)
        reader, title = reader[~online], title[~online]
    # A reader who finds every copy of a title out may place a hold on it (then looks further).
    lendable = cat.item_location != 2
    free = np.add.reduceat((lendable & ~book.on_loan).astype(np.int64), cat.item_start)
    copies = np.add.reduceat(lendable.astype(np.int64), cat.item_start)
    held = np.flatnonzero((free[title] == 0) & (copies[title] > 0) & (rng.random(len(title)) < HOLD_SHARE))
    holds = (reader[held], title[held])
    item = _copies_on_shelf(rng, title, cat, book)
    ok = item >= 0
    reader, item = reader[ok], item[ok]
    _, first = np.unique(item, return_index=True)
    first = np.sort(first)
    reader, item = reader[first], item[first]
    book.on_loan[item] = True
    kinds.append(np.zeros(len(item), np.int8))
    who.append(reader)
    what.append(item)
    # When each loan comes back: mostly within the loan period, some renewed, some overdue.
    period = np.array([library.loan_periods.get(c, 30) for c in vocab.CATEGORIES])[patrons.category[reader]]
    u = rng.random(len(item))
    back = np.minimum(period, 1 + rng.exponential(period * 0.35)).astype(np.int64)
    renewed = u < 0.12
    overdue = (u >= 0.12) & (u < 0.22)
    renew_after = (period * (0.5 + 0.5 * rng.random(len(item)))).astype(np.int64)
    back = np.where(renewed, period + 1 + (rng.random(len(item)) * period).astype(np.int64), back)
    back = np.where(overdue, period + rng.integers(1, 41, len(item)), back)
    horizon = len(next_open)
    ret_day = day.index + np.maximum(back, 1)
    ret_day = np.where(ret_day < horizon, next_open[np.minimum(ret_day, horizon - 1)], horizon)
    ren_day = day.index + np.maximum(renew_after, 1)
    ren_day = np.where(ren_day < horizon, next_open[np.minimum(ren_day, horizon - 1)], horizon)
    in_range = ret_day < horizon
    book.schedule(ret_day[in_range], 1, reader[in_range], item[in_range])
    ren = renewed & (ren_day < ret_day) & (ren_day < horizon)
    book.schedule(ren_day[ren], 2, reader[ren], item[ren])
    # In-library use of items on the shelf; no borrower.
    m = int(rng.poisson(scale.local_uses * day.building))
    t2 = cat.draw_titles(rng, rng.integers(0, N_DISC + 1, m))
    used = cat.item_start[t2] + (rng.random(m) * cat.item_count[t2]).astype(np.int64)
    used = used[~book.on_loan[used]]
    kinds.append(np.full(len(used), 3, np.int8))
    who.append(np.full(len(used), -1, np.int64))
    what.append(used)
    # Items that came back today can go out again tomorrow.
    for kind, _p, i in due:
        if kind == 1:
            book.on_loan[i] = False
    kind = np.concatenate(kinds)
    reader = np.concatenate(who).astype(np.int64)
    item = np.concatenate(what).astype(np.int64)
    secs = draw_seconds(rng, len(kind), day.open_s, day.close_s)
    order = np.lexsort((item, kind, secs))
    kind, reader, item, secs = kind[order], reader[order], item[order], secs[order]
    number = FIRST_ITEMNUMBER + item
    # `unknown_item`: some in-library uses name an item the catalogue does not hold.
    local = np.flatnonzero(kind == 3)
    bad = np.sort(rng.choice(local, min(n_unknown, len(local)), replace=False)) if len(local) else local
    number[bad] = UNKNOWN_ITEM_BASE + day.index * 1000 + np.arange(len(bad))
    has_reader = reader >= 0
    r = np.maximum(reader, 0)
    loc = cat.item_location[item]
    df = pl.DataFrame({
        "t": hms(secs),
        "branch": pl.Series([b.code for b in library.branches]).gather(cat.item_branch[item]),
        "type": pl.Series(vocab.CIRC_TYPES).gather(kind),
        "itemnumber": number,
        "itemtype": pl.Series(ITEM_TYPES).gather(loc),
        "location": pl.Series(LOCATIONS).gather(loc),
        "card": np.where(has_reader, patrons.card[r], 0),
        "has": has_reader,
        "ccode": pl.Series(CCODES).gather(loc),
        "cat": pl.Series(vocab.CATEGORIES + ("",)).gather(np.where(has_reader, patrons.category[r], 6)),
    })
    lines = concat_lines([
        pl.lit(day.stamp) + pl.col("t"), pl.col("branch"), pl.col("type"), pl.col("itemnumber").cast(pl.Utf8),
        pl.col("itemtype"), pl.col("location"),
        pl.when(pl.col("has")).then(pl.col("card").cast(pl.Utf8)).otherwise(pl.lit("")),
        pl.col("ccode"), pl.col("cat")], df)
    pos = np.flatnonzero(kind == 0)
    issues = {"pos": pos, "secs": secs[pos], "reader": reader[pos], "item": item[pos]}
    return lines, frozenset(bad.tolist()), _hold_lines(rng, day, library, patrons, cat, book, *holds), issues


def _hold_lines(rng: np.random.Generator, day: Day, library: Library, patrons: Patrons, cat: Catalogue,
                book: LoanBook, reader: np.ndarray, title: np.ndarray) -> list[str]:
    """The day's holds as a Koha reserves export: title-level holds, picked up where the
    title's first copy lives."""
    if len(reader) == 0:
        return []
    secs = np.sort(draw_seconds(rng, len(reader), day.open_s, day.close_s))
    ids = np.arange(book.next_reserve_id, book.next_reserve_id + len(reader))
    book.next_reserve_id += len(reader)
    df = pl.DataFrame({
        "t": hms(secs), "id": ids,
        "branch": pl.Series([b.code for b in library.branches]).gather(cat.item_branch[cat.item_start[title]]),
        "card": patrons.card[reader], "bib": cat.control_number(title),
    })
    return concat_lines([pl.lit(day.stamp) + pl.col("t"), pl.col("id").cast(pl.Utf8), pl.col("branch"),
                          pl.col("card").cast(pl.Utf8), pl.col("bib"), pl.lit("")], df)


@dataclass
class GateDay:
    turnstile: list[str]
    # per sensor: counts of PASS IN and OUT per 15-minute slot
    sensor_in: dict[str, np.ndarray]
    sensor_out: dict[str, np.ndarray]
    # For the ground truth: per turnstile line its second, zone code, direction (0 IN),
    # result (0 PASS) and reader; per visit its zone code and the seconds in and out.
    passages: dict[str, np.ndarray] = field(default_factory=dict)
    visits: dict[str, np.ndarray] = field(default_factory=dict)


def gates_day(rng: np.random.Generator, day: Day, scale: Scale, library: Library, patrons: Patrons) -> GateDay:
    """Turnstile events: each visitor IN, then OUT later the same day; zones by seats."""
    zones = [z for z in library.zones if z.gates and z.seats > 0]
    n_slots = (day.close_s - day.open_s + 899) // 900
    if day.building == 0 or not zones:
        return GateDay([], {}, {})
    n = int(rng.poisson(scale.gate_visits * day.building))
    visitor = patrons.draw_distinct(rng, "gates", n)
    n = len(visitor)
    seats = np.array([z.seats for z in zones], float)
    zone = rng.choice(len(zones), n, p=seats / seats.sum())
    n_gates = np.array([len(z.gates) for z in zones])
    gate_off = np.cumsum([0] + list(n_gates))[:-1]
    gate_codes = pl.Series([g for z in zones for g in z.gates])
    g_in = gate_off[zone] + (rng.random(n) * n_gates[zone]).astype(np.int64)
    g_out = gate_off[zone] + (rng.random(n) * n_gates[zone]).astype(np.int64)
    t_in = draw_seconds(rng, n, day.open_s, day.close_s - 300)
    stay = np.clip(rng.lognormal(np.log(5400), 0.75, n), 300, None).astype(np.int64)
    t_out = np.minimum(t_in + stay, day.close_s - 1 - rng.integers(0, 120, n))
    t_out = np.maximum(t_out, t_in + 60)
    # A few swipes are refused first (expired card, wrong zone) and retried a moment later.
    deny = np.flatnonzero(rng.random(n) < 0.012)
    t_deny = np.maximum(t_in[deny] - rng.integers(3, 60, len(deny)), day.open_s)
    time = np.concatenate([t_in, t_out, t_deny])
    gate = np.concatenate([g_in, g_out, g_in[deny]])
    direction = np.concatenate([np.zeros(n, np.int8), np.ones(n, np.int8), np.zeros(len(deny), np.int8)])
    result = np.concatenate([np.zeros(2 * n, np.int8), np.ones(len(deny), np.int8)])
    card = np.concatenate([patrons.card[visitor], patrons.card[visitor], patrons.card[visitor[deny]]])
    order = np.lexsort((card, direction, time))
    df = pl.DataFrame({"t": hms(time[order]), "gate": gate_codes.gather(gate[order]),
                       "dir": pl.Series(vocab.GATE_DIRECTIONS).gather(direction[order]),
                       "card": card[order], "res": pl.Series(vocab.GATE_RESULTS).gather(result[order])})
    lines = concat_lines([pl.lit(day.stamp) + pl.col("t"), pl.col("gate"), pl.col("dir"),
                           pl.col("card").cast(pl.Utf8), pl.col("res")], df)
    # What the zone's people counter sees: every PASS, plus people without a card swipe.
    sensor_in, sensor_out = {}, {}
    slot_in = (t_in - day.open_s) // 900
    slot_out = (t_out - day.open_s) // 900
    for zi, z in enumerate(zones):
        if not z.sensors:
            continue
        sel = zone == zi
        which = rng.integers(0, len(z.sensors), n)
        for si, s in enumerate(z.sensors):
            m = sel & (which == si)
            c_in = np.bincount(slot_in[m], minlength=n_slots)[:n_slots]
            c_out = np.bincount(slot_out[m], minlength=n_slots)[:n_slots]
            extra = rng.poisson(0.04 * c_in)
            sensor_in[s] = c_in + extra
            sensor_out[s] = c_out + extra
    for z in library.zones:          # a zone without gates still has its counter
        for s in z.sensors:
            sensor_in.setdefault(s, np.zeros(n_slots, np.int64))
            sensor_out.setdefault(s, np.zeros(n_slots, np.int64))
    zone_codes = np.array([z.code for z in zones])
    passages = {"secs": time[order], "zone": zone_codes[np.concatenate([zone, zone, zone[deny]])[order]],
                "direction": direction[order], "result": result[order],
                "reader": np.concatenate([visitor, visitor, visitor[deny]])[order]}
    visits = {"zone": zone_codes[zone], "t_in": t_in, "t_out": t_out}
    return GateDay(lines, sensor_in, sensor_out, passages, visits)


def counter_lines(day: Day, g: GateDay, rng: np.random.Generator, reset: bool) -> tuple[list[str], frozenset[int]]:
    """People-counter rows every 15 minutes from opening (0, 0) to closing, sensor by sensor;
    with `reset`, one sensor restarts mid-day. Returns lines and the reset row's position."""
    if not g.sensor_in:
        return [], frozenset()
    sensors = sorted(g.sensor_in)
    n_slots = len(next(iter(g.sensor_in.values())))
    ticks = day.open_s + 900 * np.arange(n_slots + 1)
    ticks[-1] = min(ticks[-1], day.close_s)
    rows_t, rows_s, rows_in, rows_out = [], [], [], []
    reset_row = -1
    reset_sensor = int(rng.integers(0, len(sensors))) if reset else -1
    for si, s in enumerate(sensors):
        cin = np.concatenate([[0], np.cumsum(g.sensor_in[s])])
        cout = np.concatenate([[0], np.cumsum(g.sensor_out[s])])
        if si == reset_sensor:
            # The device restarts just after a reading: later totals count from 0 again.
            lo, hi = max(2, len(ticks) // 4), max(3, 3 * len(ticks) // 4)
            candidates = [i for i in range(lo, hi) if cin[i - 1] > 0 and cin[i] - cin[i - 1] < cin[i - 1]]
            if candidates:
                i = candidates[int(rng.integers(0, len(candidates)))]
                cin[i:] -= cin[i - 1]
                cout[i:] -= cout[i - 1]
                cout = np.maximum(cout, 0)
                reset_row = sum(len(ticks) for _ in range(si)) + i
        rows_t.append(ticks)
        rows_s.append(np.full(len(ticks), si))
        rows_in.append(cin)
        rows_out.append(cout)
    # Interleave by time, as the device export lists all sensors at each reading.
    t = np.concatenate(rows_t)
    s = np.concatenate(rows_s)
    order = np.lexsort((s, t))
    pos = np.empty(len(order), np.int64)
    pos[order] = np.arange(len(order))
    df = pl.DataFrame({"t": hms(t[order]), "s": pl.Series(sensors).gather(s[order]),
                       "i": np.concatenate(rows_in)[order], "o": np.concatenate(rows_out)[order]})
    lines = concat_lines([pl.lit(day.stamp) + pl.col("t"), pl.col("s"), pl.col("i").cast(pl.Utf8),
                           pl.col("o").cast(pl.Utf8)], df)
    return lines, frozenset([int(pos[reset_row])]) if reset_row >= 0 else frozenset()


def _hex10(x: np.ndarray) -> pl.Series:
    digits = (x[:, None] >> (4 * np.arange(9, -1, -1))) & 15
    chars = np.frombuffer(b"0123456789abcdef", np.uint8)[digits]
    return pl.Series(np.ascontiguousarray(chars).view("S10").ravel()).cast(pl.Utf8)


QUERIES = vocab.QUERY_ZH + vocab.QUERY_EN


def searches_day(rng: np.random.Generator, day: Day, scale: Scale, patrons: Patrons
                 ) -> tuple[list[str], dict[str, np.ndarray]]:
    """OPAC searches in sessions of a few queries; about one in ten finds nothing. Also
    returns each line's second and hit count, for the ground truth."""
    n_sess = max(1, int(rng.poisson(scale.searches * day.online / 2.2)))
    size = rng.geometric(1 / 2.2, n_sess)
    sess = np.repeat(np.arange(n_sess), size)
    n = len(sess)
    start = draw_seconds(rng, n_sess, online=True)
    gap = rng.exponential(45.0, n).astype(np.int64) + 3
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    csum = np.cumsum(gap)
    offset = csum - (csum[first] - gap[first])[sess]
    secs = np.minimum(start[sess] + offset, 86_399)
    logged = rng.random(n_sess) < 0.6
    reader = patrons.draw(rng, "searches", n_sess)
    sid = _hex10(rng.integers(0, 1 << 40, n_sess, dtype=np.int64)).gather(sess)
    nz = len(vocab.QUERY_ZH)
    zh = rng.random(n) < 0.65
    a = np.where(zh, rng.integers(0, nz, n), nz + rng.integers(0, len(vocab.QUERY_EN), n))
    b = np.where(zh, rng.integers(0, nz, n), nz + rng.integers(0, len(vocab.QUERY_EN), n))
    two = rng.random(n) < 0.35
    miss = rng.random(n) < 0.06
    q = pl.Series(QUERIES)
    total = np.where(miss | (rng.random(n) < 0.04), 0, np.ceil(rng.lognormal(3.0, 1.5, n)).astype(np.int64))
    df = pl.DataFrame({
        "t": hms(secs), "secs": secs, "sid": sid,
        "card": np.where(logged[sess], patrons.card[reader][sess], 0), "logged": logged[sess],
        "qa": q.gather(a), "qb": pl.Series(np.where(two, q.gather(b).to_numpy(), "")),
        "miss": pl.Series(vocab.QUERY_MISS).gather(rng.integers(0, len(vocab.QUERY_MISS), n)),
        "is_miss": miss,
        "type": pl.Series(vocab.SEARCH_TYPES).gather((rng.random(n) < 0.05).astype(np.int8)),
        "total": total,
    }).sort("t", "sid", maintain_order=True)
    query = (pl.when(pl.col("is_miss")).then(pl.col("miss"))
             .otherwise(pl.when(pl.col("qb") == "").then(pl.col("qa"))
                        .otherwise(pl.col("qa") + pl.lit(" ") + pl.col("qb"))))
    lines = concat_lines([pl.lit(day.stamp) + pl.col("t"), pl.col("sid"),
                           pl.when(pl.col("logged")).then(pl.col("card").cast(pl.Utf8)).otherwise(pl.lit("")),
                           query, pl.col("type"), pl.col("total").cast(pl.Utf8)], df)
    return lines, {"secs": df["secs"].to_numpy(), "hits": df["total"].to_numpy()}
