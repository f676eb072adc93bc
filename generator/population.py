"""The readers and the collection: patron export (GB18030) and MARC catalogue.

Both are drawn once per run, before the days, because every event refers to them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from pymarc import Field, Leader, Record, Subfield

from warehouse.library import Library

from . import vocab
from .scales import Scale

N_DISC = len(vocab.DISCIPLINES)          # title discipline N_DISC = the general collection
LOCATIONS = ("STACKS", "NEWBOOK", "REF")
LOCATION_SHARES = (0.80, 0.12, 0.08)
CCODES = ("CIR", "NEW", "REF")
ITEM_TYPES = ("BK", "BK", "REF")          # by location
FIRST_ITEMNUMBER = 100_001
# Reading lists: each discipline's courses set a few titles that their readers borrow
# together, with extra copies on the shelf, as course reserves are.
COURSES_PER_DISCIPLINE = 2
COURSE_TITLES = 5
COURSE_COPIES = 6

# How much each reader category uses each service, relative to undergraduates.
_USE = {
    "circulation": (1.0, 1.4, 0.8, 0.35, 0.3, 0.2),
    "gates": (1.0, 0.9, 0.3, 0.12, 0.3, 0.05),
    "searches": (1.0, 1.3, 0.8, 0.3, 0.2, 0.2),
    "ezproxy": (0.7, 1.6, 1.5, 0.6, 0.0, 0.1),
}


@dataclass
class Patrons:
    card: np.ndarray            # int64, ten digits
    category: np.ndarray        # index into vocab.CATEGORIES
    discipline: np.ndarray      # index into vocab.DISCIPLINES, -1 for none
    cum_use: dict[str, np.ndarray]   # per service: cumulative draw weights
    log_use: dict[str, np.ndarray]   # per service: log weights, for draws without repeats

    def draw(self, rng: np.random.Generator, service: str, n: int) -> np.ndarray:
        """`n` reader indices, keen readers more often (repeats allowed)."""
        cum = self.cum_use[service]
        return np.searchsorted(cum, rng.random(n) * cum[-1], side="right")

    def draw_distinct(self, rng: np.random.Generator, service: str, n: int) -> np.ndarray:
        """`n` different reader indices, weighted (Gumbel top-k)."""
        keys = self.log_use[service] + rng.gumbel(size=len(self.card))
        n = min(n, int(np.isfinite(keys).sum()))
        return np.argpartition(-keys, n - 1)[:n] if n else np.zeros(0, np.int64)


def academic_year(day: dt.date) -> int:
    return day.year if day.month >= 9 else day.year - 1


def build_patrons(rng: np.random.Generator, scale: Scale, start: dt.date) -> Patrons:
    """Draw the readers: category, college, enrolment year and a card number for each."""
    n = scale.patrons
    y = academic_year(start)
    cat = rng.choice(len(vocab.CATEGORIES), n, p=vocab.CATEGORY_SHARES).astype(np.int8)
    disc = rng.integers(0, N_DISC, n).astype(np.int16)
    # Enrolment (or hiring, or registration) year ranges per category.
    lo = np.array([y - 3, y - 2, 1985, 1995, y - 5, y - 8])[cat]
    hi = np.array([y, y, y - 1, y - 4, y, y])[cat]
    year = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)
    code = np.where(cat == 2, 50 + disc.astype(np.int64), disc.astype(np.int64) + 1)
    code = np.where(cat == 4, 90, np.where(cat == 5, 95, code))
    disc = np.where(cat >= 4, -1, disc).astype(np.int16)
    # Card = year, college code, serial within (year, code): e.g. 2023 04 0512.
    group = year * 100 + code
    order = np.argsort(group, kind="stable")
    g_sorted = group[order]
    first = np.searchsorted(g_sorted, g_sorted, side="left")
    serial = np.empty(n, np.int64)
    serial[order] = np.arange(n) - first + 1
    card = year * 1_000_000 + code * 10_000 + serial
    keen = rng.lognormal(0.0, 0.9, n)
    cum_use, log_use = {}, {}
    for service, shares in _USE.items():
        w = np.asarray(shares)[cat] * keen
        cum_use[service] = np.cumsum(w)
        with np.errstate(divide="ignore"):
            log_use[service] = np.log(w)
    return Patrons(card=card, category=cat, discipline=disc, cum_use=cum_use, log_use=log_use)


def patron_lines(p: Patrons, rng: np.random.Generator, start: dt.date) -> list[str]:
    """The patron export rows (without header), sorted by card number."""
    n = len(p.card)
    sw = np.asarray(vocab.SURNAME_WEIGHTS)
    s_idx = rng.choice(len(vocab.SURNAMES), n, p=sw / sw.sum())
    g1 = rng.integers(0, len(vocab.GIVEN_CHARS), n)
    g2 = np.where(rng.random(n) < 0.7, rng.integers(0, len(vocab.GIVEN_CHARS), n), -1)
    chars = pl.Series([c for c, _ in vocab.GIVEN_CHARS] + [""])
    pys = pl.Series([q for _, q in vocab.GIVEN_CHARS] + [""])
    card = p.card.astype(str)
    year = p.card // 1_000_000
    cat = p.category
    has_college = p.discipline >= 0
    d = np.maximum(p.discipline, 0)
    colleges = pl.Series([x.college for x in vocab.DISCIPLINES])
    dept_lists = [x.departments for x in vocab.DISCIPLINES]
    dept_flat = pl.Series([dd for ds in dept_lists for dd in ds])
    dept_off = np.cumsum([0] + [len(ds) for ds in dept_lists])[:-1]
    dept_n = np.array([len(ds) for ds in dept_lists])
    dept = dept_off[d] + (rng.random(n) * dept_n[d]).astype(np.int64)
    domain = np.array(["stu.example.edu.cn", "stu.example.edu.cn", "example.edu.cn", "alumni.example.edu.cn",
                       "example.com", "example.org"])[cat]
    enrolled_day = np.where(cat <= 1, 0, rng.integers(0, 300, n))
    base = np.array([(dt.date(int(yy), 9, 1) - dt.date(1970, 1, 1)).days for yy in range(1900, 2101)])
    enrolled = base[year - 1900] + enrolled_day
    enrolled = np.minimum(enrolled, (start - dt.date(1970, 1, 1)).days)
    phone = (np.array([13, 15, 17, 18, 19])[rng.integers(0, 5, n)] * 1_000_000_000
             + rng.integers(0, 1_000_000_000, n))
    consent = rng.choice(3, n, p=vocab.CONSENT_SHARES)
    df = pl.DataFrame({
        "cardnumber": card,
        "surname": pl.Series([s for s, _ in vocab.SURNAMES]).gather(s_idx),
        "g1": chars.gather(g1), "g2": chars.gather(np.where(g2 < 0, len(vocab.GIVEN_CHARS), g2)),
        "p1": pys.gather(g1), "p2": pys.gather(np.where(g2 < 0, len(vocab.GIVEN_CHARS), g2)),
        "spy": pl.Series([q for _, q in vocab.SURNAMES]).gather(s_idx),
        "categorycode": pl.Series(vocab.CATEGORIES).gather(cat),
        "college": pl.Series(np.where(has_college, colleges.gather(d).to_numpy(), "")),
        "department": pl.Series(np.where(has_college, dept_flat.gather(dept).to_numpy(), "")),
        "enrolment_year": year,
        "domain": domain,
        "phone": phone,
        "dateenrolled": pl.Series(enrolled.astype("datetime64[D]")).dt.strftime("%Y-%m-%d"),
        "profiling_consent": pl.Series(vocab.CONSENT).gather(consent),
    }).sort("cardnumber")
    lines = df.select(pl.concat_str([
        pl.col("cardnumber"), pl.col("surname"), pl.col("g1") + pl.col("g2"), pl.col("categorycode"),
        pl.col("college"), pl.col("department"), pl.col("enrolment_year").cast(pl.Utf8),
        pl.col("p1") + pl.col("p2") + pl.lit(".") + pl.col("spy") + pl.col("cardnumber").str.slice(6, 4)
        + pl.lit("@") + pl.col("domain"),
        pl.col("phone").cast(pl.Utf8), pl.col("dateenrolled"), pl.col("profiling_consent"),
    ], separator=",")).to_series()
    return lines.to_list()


@dataclass
class Catalogue:
    title_discipline: np.ndarray   # 0..N_DISC (N_DISC = general)
    item_start: np.ndarray         # first item index of each title
    item_count: np.ndarray
    item_title: np.ndarray
    item_branch: np.ndarray        # index into library.branches
    item_location: np.ndarray      # index into LOCATIONS
    item_acquired: np.ndarray      # days since 1970
    title_year: np.ndarray
    title_lang_zh: np.ndarray      # bool
    title_clc: np.ndarray          # index into the flat CLC list
    clc: tuple[str, ...]
    isbn: np.ndarray               # ISBN-13 of each title, as an integer
    # Reading lists: course c of discipline d is row d * COURSES_PER_DISCIPLINE + c.
    course_titles: np.ndarray      # (disciplines × courses, COURSE_TITLES) title indices
    # Per discipline: its titles by popularity, and cumulative Zipf weights over them.
    by_popularity: list[np.ndarray]
    zipf_cum: list[np.ndarray]
    # Each title's record number (MARC 001 is f"DUL{n:08d}"), known once write_marc has laid
    # the records out: damaged records take numbers too.
    bib_number: np.ndarray | None = None

    def control_number(self, title: np.ndarray) -> np.ndarray:
        assert self.bib_number is not None, "write_marc numbers the records"
        return np.char.add("DUL", np.char.zfill(self.bib_number[title].astype(str), 8))

    @property
    def itemnumber(self) -> np.ndarray:
        return FIRST_ITEMNUMBER + np.arange(len(self.item_title), dtype=np.int64)

    def draw_titles(self, rng: np.random.Generator, discipline: np.ndarray, uniform: bool = False) -> np.ndarray:
        """One title per requested discipline, popular titles far more often (Zipf), or
        every title alike when `uniform`."""
        out = np.empty(len(discipline), np.int64)
        for d in range(N_DISC + 1):
            sel = np.flatnonzero(discipline == d)
            if len(sel) == 0 or len(self.by_popularity[d]) == 0:
                if len(sel):
                    out[sel] = rng.integers(0, len(self.title_discipline), len(sel))
                continue
            cum = self.zipf_cum[d]
            if uniform:
                rank = (rng.random(len(sel)) * len(cum)).astype(np.int64)
            else:
                rank = np.searchsorted(cum, rng.random(len(sel)) * cum[-1], side="right")
            out[sel] = self.by_popularity[d][rank]
        return out


def build_catalogue(rng: np.random.Generator, scale: Scale, library: Library, start: dt.date) -> Catalogue:
    """Draw titles (discipline, class, language, year) and their 1–3 items each."""
    n = scale.titles
    shares = np.full(N_DISC + 1, 1.0)
    shares[N_DISC] = 2.0
    disc = rng.choice(N_DISC + 1, n, p=shares / shares.sum()).astype(np.int16)
    clc_lists = [d.clc for d in vocab.DISCIPLINES] + [vocab.GENERAL_CLC]
    clc_flat = tuple(c for cs in clc_lists for c in cs)
    off = np.cumsum([0] + [len(c) for c in clc_lists])[:-1]
    cnt = np.array([len(c) for c in clc_lists])
    title_clc = off[disc] + (rng.random(n) * cnt[disc]).astype(np.int64)
    count = rng.choice([1, 2, 3], n, p=[0.45, 0.35, 0.20])
    pools = [np.flatnonzero(disc == d) for d in range(N_DISC)]
    course_titles = np.stack([rng.choice(pool, COURSE_TITLES, replace=len(pool) < COURSE_TITLES)
                              for pool in pools for _ in range(COURSES_PER_DISCIPLINE)])
    count[course_titles.ravel()] = COURSE_COPIES
    item_start = np.concatenate([[0], np.cumsum(count)[:-1]])
    item_title = np.repeat(np.arange(n), count)
    n_items = len(item_title)
    # Each discipline's books live in one branch (medicine in the medical library),
    # with a share shelved elsewhere.
    branches = [b.code for b in library.branches]
    home = np.array([i % len(branches) for i in range(N_DISC + 1)])
    med = next((i for i, c in enumerate(branches) if "MED" in c.upper()), None)
    for i, d in enumerate(vocab.DISCIPLINES):
        if med is not None and d.college == "医学部":
            home[i] = med
        elif med is not None and home[i] == med:
            home[i] = 0
    item_branch = np.where(rng.random(n_items) < 0.85, home[disc[item_title]], rng.integers(0, len(branches), n_items))
    item_location = rng.choice(3, n_items, p=LOCATION_SHARES)
    year_now = start.year
    title_year = (year_now - np.minimum(rng.exponential(8.0, n), 45)).astype(np.int64)
    title_zh = rng.random(n) < 0.72
    first = (np.array([(dt.date(int(yy), 1, 1) - dt.date(1970, 1, 1)).days for yy in range(1950, 2101)]))
    acq_lo = first[title_year[item_title] - 1950] + 60
    acq_hi = (start - dt.date(1970, 1, 1)).days - 1
    acquired = np.minimum(acq_lo + (rng.random(n_items) * np.maximum(acq_hi - acq_lo, 1)).astype(np.int64), acq_hi)
    acquired = np.where(item_location == 1, acq_hi - rng.integers(1, 120, n_items), acquired)
    by_pop, zipf = [], []
    for d in range(N_DISC + 1):
        titles = rng.permutation(np.flatnonzero(disc == d))
        by_pop.append(titles)
        zipf.append(np.cumsum(1.0 / np.arange(1, len(titles) + 1) ** 1.05))
    stem = np.where(title_zh, 978_7_000_00000 + rng.integers(0, 99_999_999, n),
                    978_0_000_00000 + rng.integers(0, 1_999_999_999, n))
    return Catalogue(title_discipline=disc, item_start=item_start, item_count=count, item_title=item_title,
                     item_branch=item_branch, item_location=item_location, item_acquired=acquired,
                     title_year=title_year, title_lang_zh=title_zh, title_clc=title_clc, clc=clc_flat,
                     isbn=_isbn13(stem), course_titles=course_titles, by_popularity=by_pop, zipf_cum=zipf)


def _isbn13(stem12: np.ndarray) -> np.ndarray:
    digits = (stem12[:, None] // 10 ** np.arange(11, -1, -1)) % 10
    check = (10 - (digits * np.array([1, 3] * 6)).sum(axis=1) % 10) % 10
    return stem12 * 10 + check


def write_marc(path: Path, cat: Catalogue, library: Library, rng: np.random.Generator, start: dt.date,
               n_bad: int) -> tuple[int, int]:
    """Write the catalogue as MARC21 (UTF-8); `n_bad` extra records get a damaged leader.

    Returns (records written, damaged records)."""
    n = len(cat.title_discipline)
    branches = [b.code for b in library.branches]
    # Damaged records are extra titles whose items never circulate, placed mid-file.
    total = n + n_bad
    bad_slots = set(rng.choice(np.arange(1, total - 1), n_bad, replace=False).tolist()) if total > 2 else set()
    isbn = cat.isbn
    topic = rng.integers(0, 1_000_000, n)
    form = rng.integers(0, 1_000_000, n)
    sub = rng.integers(0, 1_000_000, n)
    pub = rng.integers(0, 1_000_000, n)
    auth = rng.integers(0, 1_000_000, (n, 2))
    has_084 = rng.random(n) < 0.93
    has_050 = rng.random(n) < np.where(cat.title_lang_zh, 0.04, 0.6)
    has_082 = rng.random(n) < np.where(cat.title_lang_zh, 0.03, 0.5)
    cutter = rng.integers(1, 999, n)
    entered = start - dt.timedelta(days=1)
    extra_item = FIRST_ITEMNUMBER + len(cat.item_title)
    cat.bib_number = np.zeros(n, np.int64)
    written = bad = 0
    with open(path, "wb") as fh:
        buf: list[bytes] = []
        t_real = 0
        for slot in range(total):
            damaged = slot in bad_slots
            t = int(rng.integers(0, n)) if damaged else t_real
            rec = _record(t, cat, branches, isbn, topic, form, sub, pub, auth, has_084, has_050, has_082, cutter,
                          entered, bib_id=slot + 1, extra_item=extra_item if damaged else None)
            data = rec.as_marc()
            if damaged:
                # The base address of data (leader/12-16) is not a number: the record cannot
                # be decoded, but its length is right, so readers stay in step with the file.
                data = data[:12] + b"0x4?!" + data[17:]
                extra_item += 3
                bad += 1
            else:
                cat.bib_number[t_real] = slot + 1
                t_real += 1
            buf.append(data)
            written += 1
            if len(buf) >= 20_000:
                fh.write(b"".join(buf))
                buf.clear()
        fh.write(b"".join(buf))
    return written, bad


def _record(t, cat: Catalogue, branches, isbn, topic, form, sub, pub, auth, has_084, has_050, has_082, cutter,
            entered: dt.date, bib_id: int, extra_item: int | None) -> Record:
    d = int(cat.title_discipline[t])
    zh = bool(cat.title_lang_zh[t])
    year = int(cat.title_year[t])
    if d < N_DISC:
        disc = vocab.DISCIPLINES[d]
        topics_zh, topics_en, lc, dewey = disc.topics_zh, disc.topics_en, disc.lc, disc.dewey
    else:
        topics_zh, topics_en, lc, dewey = vocab.GENERAL_TOPICS_ZH, vocab.GENERAL_TOPICS_EN, "AE5", "030"
    if zh:
        subject = topics_zh[topic[t] % len(topics_zh)]
        title = vocab.TITLE_FORMS_ZH[form[t] % len(vocab.TITLE_FORMS_ZH)].format(subject)
        subtitle = vocab.SUBTITLES_ZH[sub[t] % len(vocab.SUBTITLES_ZH)]
        place, publisher = vocab.PUBLISHERS_ZH[pub[t] % len(vocab.PUBLISHERS_ZH)]
        s, spy = vocab.SURNAMES[auth[t, 0] % len(vocab.SURNAMES)]
        author = s + vocab.GIVEN_CHARS[auth[t, 1] % len(vocab.GIVEN_CHARS)][0]
        mark, lang, country = spy[0].upper(), "chi", "cc "
    else:
        subject = topics_en[topic[t] % len(topics_en)]
        title = vocab.TITLE_FORMS_EN[form[t] % len(vocab.TITLE_FORMS_EN)].format(subject)
        subtitle = vocab.SUBTITLES_EN[sub[t] % len(vocab.SUBTITLES_EN)]
        place, publisher = vocab.PUBLISHERS_EN[pub[t] % len(vocab.PUBLISHERS_EN)]
        author = vocab.AUTHORS_EN[auth[t, 0] % len(vocab.AUTHORS_EN)]
        mark, lang, country = author[0], "eng", "enk"
    clc = cat.clc[cat.title_clc[t]]
    call = f"{clc}/{mark}{cutter[t]}"
    f008 = f"{entered:%y%m%d}s{year}    {country}     b    000 0 {lang} d"
    rec = Record(leader=Leader("00000nam a2200000 i 4500"), force_utf8=True)
    rec.add_field(Field(tag="001", data=f"DUL{bib_id:08d}"), Field(tag="008", data=f008),
                  Field(tag="020", indicators=[" ", " "], subfields=[Subfield("a", str(isbn[t]))]))
    if has_084[t]:
        rec.add_field(Field(tag="084", indicators=[" ", " "], subfields=[Subfield("a", clc), Subfield("2", "clc")]))
    if has_050[t]:
        rec.add_field(Field(tag="050", indicators=[" ", "4"],
                            subfields=[Subfield("a", lc), Subfield("b", f".{mark}{cutter[t]} {year}")]))
    if has_082[t]:
        rec.add_field(Field(tag="082", indicators=["0", "4"], subfields=[Subfield("a", dewey), Subfield("2", "23")]))
    title_sf = [Subfield("a", title + (" :" if subtitle else ""))]
    if subtitle:
        title_sf.append(Subfield("b", subtitle))
    rec.add_field(Field(tag="100", indicators=["1", " "], subfields=[Subfield("a", author)]),
                  Field(tag="245", indicators=["1", "0"], subfields=title_sf),
                  Field(tag="264", indicators=[" ", "1"], subfields=[Subfield("a", place), Subfield("b", publisher),
                                                                     Subfield("c", str(year))]),
                  Field(tag="650", indicators=[" ", "7" if zh else "0"], subfields=[Subfield("a", subject)]))
    if extra_item is None:
        first, count = int(cat.item_start[t]), int(cat.item_count[t])
        items = range(first, first + count)
        numbers = [FIRST_ITEMNUMBER + i for i in items]
    else:
        items = [int(cat.item_start[t])] * 2
        numbers = [extra_item, extra_item + 1]
    for i, number in zip(items, numbers):
        loc = int(cat.item_location[i])
        acquired = dt.date(1970, 1, 1) + dt.timedelta(days=int(cat.item_acquired[i]))
        rec.add_field(Field(tag="952", indicators=[" ", " "], subfields=[
            Subfield("9", str(number)), Subfield("p", f"39{number:010d}"),
            Subfield("a", branches[int(cat.item_branch[i])]), Subfield("c", LOCATIONS[loc]),
            Subfield("o", call), Subfield("y", ITEM_TYPES[loc]), Subfield("d", acquired.isoformat())]))
    return rec
