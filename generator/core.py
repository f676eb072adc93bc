"""`generate`: the whole synthetic library, streamed day by day into landing files."""

from __future__ import annotations

import calendar
import datetime as dt
import gzip
import io
import time
from pathlib import Path

import numpy as np

from warehouse.library import Library

from . import vocab
from .clock import day_season, seconds
from .counter import write_month
from .daily import Day, LoanBook, circulation_day, counter_lines, gates_day, searches_day
from .eresources import build_journals, ezproxy_day
from .defects import LINE_KINDS, apply_line_defects
from .population import Catalogue, build_catalogue, build_patrons, patron_lines, write_marc
from .report import GenerationReport
from .scales import SCALES
from .truth import Truth

# Stream numbers for the per-day random generators: default_rng([seed, day, stream]).
S_CIRC, S_GATES, S_COUNTER, S_SEARCH, S_EZPROXY, S_DEFECT = 1, 2, 3, 4, 5, 6
SOURCE_INDEX = {"circulation": 0, "searches": 1, "ezproxy": 2, "turnstile": 3, "counter": 4, "holds": 5}

CIRC_HEADER = "datetime,branch,type,itemnumber,itemtype,location,cardnumber,ccode,categorycode"
HOLDS_HEADER = "timestamp,reserve_id,branchcode,cardnumber,biblionumber,itemnumber"
PATRON_HEADER = ("cardnumber,surname,firstname,categorycode,college,department,enrolment_year,email,phone,"
                 "dateenrolled,profiling_consent")
SEARCH_HEADER = "time,sessionid,cardnumber,query_desc,type,total"
TURNSTILE_HEADER = "time,gate,direction,card,result"
COUNTER_HEADER = "timestamp,sensor,in_total,out_total"


def _text(header: str | None, lines: list[str], *, newline: str = "\n", truncated: bool = False) -> str:
    body = ([header] if header else []) + lines
    return newline.join(body) + ("" if truncated else newline)


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    # mtime=0 and no file name: the same input gives the same bytes.
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="", compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def _with_defects(rng: np.random.Generator, lines: list[str], *, fmt: str, rate: float, day_index: int, source: str,
                  protected: frozenset[int] = frozenset(), extra: dict[str, int] | None = None,
                  ) -> tuple[list[str], dict[str, int], bool, np.ndarray]:
    """Damage the clean lines of one file; some files end in a truncated line. Also returns
    which of the clean lines were damaged.

    A rotation over days forces each kind in turn, so a few days show every kind."""
    k = SOURCE_INDEX[source]
    kinds = LINE_KINDS + ("truncated_line",)
    force = kinds[(day_index + k) % len(kinds)]
    truncate = force == "truncated_line" or rng.random() < 0.15
    out, counts, damaged = apply_line_defects(lines, rng, fmt=fmt, rate=rate, force=force, truncate=truncate,
                                              protected=protected)
    counts.update(extra or {})
    return out, counts, counts.get("truncated_line", 0) > 0, damaged


def _dedupe(lines: list[str]) -> tuple[list[str], np.ndarray]:
    """The lines without repeats, and the positions kept: two identical clean lines would
    look like a `duplicate_row`; keep the first."""
    unique = list(dict.fromkeys(lines))
    if len(unique) == len(lines):
        return lines, np.arange(len(lines))
    first: dict[str, int] = {}
    for i, line in enumerate(lines):
        first.setdefault(line, i)
    return unique, np.fromiter(first.values(), np.int64, len(first))


def _next_open(library: Library, start: dt.date, days: int) -> np.ndarray:
    """For each day index, the first day index ≥ it when the library is open (`days` if none)."""
    out = np.full(days + 1, days, np.int64)
    nxt = days
    for i in range(days - 1, -1, -1):
        if not library.is_holiday(start + dt.timedelta(days=i)):
            nxt = i
        out[i] = nxt
    return out[:days]


def catalogue_of(library: Library, scale: str, seed: int, start: dt.date) -> Catalogue:
    """The collection a `generate` run with these arguments writes: titles, items, ISBNs and
    reading lists (tests compare what the marts find with it)."""
    return build_catalogue(np.random.default_rng([seed, 0, 3]), SCALES[scale], library, start)


def generate(landing: Path, library: Library, *, scale: str = "tiny", seed: int = 42,
             start: dt.date = dt.date(2025, 9, 1), days: int = 7, truth: Path | None = None) -> GenerationReport:
    """Write `days` days of a synthetic library from `start` under `landing`, per docs/LANDING.md,
    and what truly happened under `truth` (default: `truth` beside `landing`; generator.truth)."""
    t0 = time.perf_counter()
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if days < 1:
        raise ValueError("days must be at least 1")
    sc = SCALES[scale]
    landing = Path(landing)
    report = GenerationReport(scale=scale, seed=seed, start=start.isoformat(), days=days)
    last_day = start + dt.timedelta(days=days - 1)
    for sub in ("circulation", "patrons", "opac", "catalogue", "counter", "ezproxy", "gates"):
        (landing / sub).mkdir(parents=True, exist_ok=True)

    # The readers and the collection come first: every event refers to them.
    patrons = build_patrons(np.random.default_rng([seed, 0, 1]), sc, start)
    rows = patron_lines(patrons, np.random.default_rng([seed, 0, 2]), last_day)
    rel = f"patrons/patrons_{last_day:%Y-%m-%d}.csv"
    (landing / rel).write_bytes(_text(PATRON_HEADER, rows).encode("gb18030"))
    report.add(rel, "patrons", len(rows))
    cat = catalogue_of(library, scale, seed, start)
    rel = f"catalogue/catalogue_{last_day:%Y-%m-%d}.mrc"
    n_rec, n_bad = write_marc(landing / rel, cat, library, np.random.default_rng([seed, 0, 4]), start,
                              n_bad=1 + seed % 2)
    report.add(rel, "marc", n_rec, {"bad_record": n_bad})
    known = Truth(landing.parent / "truth" if truth is None else truth, library, patrons, cat)
    journals = build_journals(np.random.default_rng([seed, 0, 5]), sc)
    journals.link_print_editions(np.random.default_rng([seed, 0, 6]), cat)
    first_month = start.replace(day=1)

    def ebook_shift(date: dt.date) -> float:
        return vocab.EBOOK_SHIFT if date.replace(day=1) > first_month else 0.0

    book = LoanBook(on_loan=np.zeros(len(cat.item_title), bool))
    next_open = _next_open(library, start, days)
    n_pl, J = len(vocab.PLATFORMS), sc.journals
    month_use: dict[dt.date, list[np.ndarray]] = {}
    rate = sc.defect_rate
    for i in range(days):
        date = start + dt.timedelta(days=i)
        hours = library.hours_on(date)
        season = day_season(library, date)
        day = Day(i, date, season["building"], season["online"], seconds(hours.open), seconds(hours.close),
                  ebook_shift=ebook_shift(date))
        stamp = f"{date:%Y-%m-%d}"
        drng = np.random.default_rng([seed, i, S_DEFECT])

        # Circulation: CRLF on some days, as some Koha exports from Windows are.
        n_unknown = int(drng.binomial(max(1, int(sc.loans * 2.3)), rate / 10)) + (1 if i % 3 == 0 else 0)
        lines, unknown, holds, issues = circulation_day(np.random.default_rng([seed, i, S_CIRC]), day, sc, library, patrons, cat,
                                         book, next_open, n_unknown)
        if lines:
            lines, counts, cut, damaged = _with_defects(drng, lines, fmt="csv", rate=rate * 0.75, day_index=i,
                                                        source="circulation", protected=unknown,
                                                        extra={"unknown_item": len(unknown)})
            known.loans(date, issues, damaged)
            rel = f"circulation/statistics_{stamp}.csv"
            newline = "\r\n" if i % 3 == 1 else "\n"
            (landing / rel).write_bytes(_text(CIRC_HEADER, lines, newline=newline, truncated=cut).encode("utf-8"))
            report.add(rel, "circulation", len(lines), counts)
        if holds:
            holds, counts, cut, _ = _with_defects(drng, holds, fmt="csv", rate=rate, day_index=i, source="holds")
            rel = f"circulation/holds_{stamp}.csv"
            (landing / rel).write_bytes(_text(HOLDS_HEADER, holds, truncated=cut).encode("utf-8"))
            report.add(rel, "holds", len(holds), counts)

        # OPAC searches go on when the building is shut; some days' exports are GB18030.
        lines, searched = searches_day(np.random.default_rng([seed, i, S_SEARCH]), day, sc, patrons)
        lines, kept = _dedupe(lines)
        lines, counts, cut, damaged = _with_defects(drng, lines, fmt="csv", rate=rate, day_index=i, source="searches")
        known.searches(date, searched, kept, damaged)
        rel = f"opac/search_history_{stamp}.csv"
        encoding = "gb18030" if i % 4 == 2 else "utf-8"
        (landing / rel).write_bytes(_text(SEARCH_HEADER, lines, truncated=cut).encode(encoding))
        report.add(rel, "searches", len(lines), counts)

        # EZproxy, and the month's proxied use for COUNTER.
        ez = ezproxy_day(np.random.default_rng([seed, i, S_EZPROXY]), day, sc, library, patrons, journals)
        lines, kept = _dedupe(ez.lines)
        lines, counts, cut, damaged = _with_defects(drng, lines, fmt="ezproxy", rate=rate, day_index=i,
                                                    source="ezproxy")
        known.ezproxy(date, ez.requests, kept, damaged)
        rel = f"ezproxy/ezproxy_{stamp}.log.gz"
        (landing / rel).write_bytes(_gzip(_text(None, lines, truncated=cut).encode("utf-8")))
        report.add(rel, "ezproxy", len(lines), counts)
        use = month_use.setdefault(date.replace(day=1), [np.zeros((n_pl, J), np.int64), np.zeros((n_pl, J), np.int64),
                                                          np.zeros(n_pl, np.int64)])
        use[0] += ez.views
        use[1] += ez.downloads
        use[2] += ez.searches

        # Gates: no file at all on a day the library is closed.
        g = gates_day(np.random.default_rng([seed, i, S_GATES]), day, sc, library, patrons)
        if g.turnstile:
            lines, kept = _dedupe(g.turnstile)
            lines, counts, cut, damaged = _with_defects(drng, lines, fmt="csv", rate=rate, day_index=i,
                                                        source="turnstile")
            known.gates(date, g.passages, g.visits, kept, damaged)
            rel = f"gates/turnstile_{stamp}.csv.gz"
            (landing / rel).write_bytes(_gzip(_text(TURNSTILE_HEADER, lines, truncated=cut).encode("utf-8")))
            report.add(rel, "gates", len(lines), counts)
        if g.sensor_in:
            crng = np.random.default_rng([seed, i, S_COUNTER])
            reset = (i % 3 == 0) or crng.random() < 0.2
            lines, reset_at = counter_lines(day, g, crng, reset)
            lines, counts, cut, _ = _with_defects(drng, lines, fmt="csv", rate=rate, day_index=i, source="counter",
                                               protected=reset_at, extra={"counter_reset": len(reset_at)})
            rel = f"gates/counter_{stamp}.csv"
            (landing / rel).write_bytes(_text(COUNTER_HEADER, lines, truncated=cut).encode("utf-8"))
            report.add(rel, "gates", len(lines), counts)

    # COUNTER: one set per month the range touches; a partly covered month is partial.
    for month in sorted(month_use):
        mdays = calendar.monthrange(month.year, month.month)[1]
        covered = sum(1 for i in range(days) if (start + dt.timedelta(days=i)).replace(day=1) == month)
        views, downloads, searches = month_use[month]
        folder = landing / "counter" / f"{month:%Y-%m}"
        usage: list[dict] = []
        written = write_month(folder, month, covered / mdays, views, downloads, searches, journals,
                              np.random.default_rng([seed, month.year * 100 + month.month, 7]),
                              ebook_shift=ebook_shift(month), truth=usage)
        known.counter(month, usage)
        for name, n in written:
            report.add(f"counter/{month:%Y-%m}/{name}", "counter", n)
    report.seconds = time.perf_counter() - t0
    return report
