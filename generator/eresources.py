"""E-resources: the e-journals of each platform and a day of EZproxy requests.

Like generator.daily, whole columns are drawn with numpy and the lines built with polars."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

import numpy as np
import polars as pl

from warehouse.library import Library

from . import vocab
from .clock import MONTHS, draw_seconds, hms, utc_offset
from .daily import QUERIES, Day, concat_lines
from .population import N_DISC, Catalogue, Patrons
from .scales import Scale


@dataclass
class Journals:
    """The e-journals of each platform: codes in URLs, titles and ISSNs in COUNTER."""

    code: list[list[str]]
    title: list[list[str]]
    issn: list[list[str]]
    is_book: list[np.ndarray]
    zipf_cum: np.ndarray
    discipline: list[np.ndarray]        # per platform: each title's discipline (vocab.DISCIPLINES index)
    # per platform: for e-books, the ISBN-13 of the catalogue's print edition (0 for journals)
    isbn: list[np.ndarray] = field(default_factory=list)

    def link_print_editions(self, rng: np.random.Generator, cat: Catalogue) -> None:
        """Give every e-book the ISBN of a catalogue title of its discipline: the library holds
        both editions, so COUNTER use and loans can be compared per discipline."""
        self.isbn = []
        for disc, book in zip(self.discipline, self.is_book):
            isbn = np.zeros(len(disc), np.int64)
            for k in np.flatnonzero(book):
                pool = cat.by_popularity[int(disc[k])]
                if len(pool):
                    isbn[k] = cat.isbn[pool[min(int(rng.integers(0, 40)), len(pool) - 1)]]
            self.isbn.append(isbn)


def _issn(num7: int) -> str:
    s = sum(int(c) * w for c, w in zip(f"{num7:07d}", range(8, 1, -1)))
    check = (11 - s % 11) % 11
    return f"{num7 // 1000:04d}-{num7 % 1000:03d}{'X' if check == 10 else check}"


def build_journals(rng: np.random.Generator, scale: Scale) -> Journals:
    letters = "abcdefghijklmnopqrstuvwxyz"
    codes, titles, issns, books, discs = [], [], [], [], []
    for p in vocab.PLATFORMS:
        j = scale.journals
        num = rng.choice(9_000_000, j, replace=False) + 1_000_000
        if p.name == "ScienceDirect":
            code = [f"{x:08d}" for x in num]
        elif p.name == "SpringerLink":
            code = [f"{10000 + x % 90000}" for x in num]
        elif p.chinese:
            code = ["".join(letters[(x >> (5 * k)) % 26] for k in range(4)) for x in num]
            code = [c.upper() if p.name == "CNKI" else c + "xb" for c in code]
        else:
            code = ["".join(letters[(x >> (5 * k)) % 26] for k in range(3 + x % 2)) for x in num]
        d = rng.integers(0, N_DISC, j)
        t = rng.integers(0, 100, j)
        book = rng.random(j) < (0.25 if p.name in ("ScienceDirect", "SpringerLink") else 0.0)
        d[np.flatnonzero(book)[:2]] = vocab.EBOOK_SHIFT_DISCIPLINE    # its e-books, for the planted shift
        if p.chinese:
            title = [f"{vocab.DISCIPLINES[di].topics_zh[ti % len(vocab.DISCIPLINES[di].topics_zh)]}"
                     f"{('学报', '研究', '进展', '杂志')[ti % 4]}" + ("" if k < 4 * N_DISC else f"（{k}）")
                     for k, (di, ti) in enumerate(zip(d, t))]
        else:
            title = [f"{('Journal of ', 'Advances in ', 'Annals of ', 'Reviews in ')[ti % 4]}"
                     f"{vocab.DISCIPLINES[di].topics_en[ti % len(vocab.DISCIPLINES[di].topics_en)]}"
                     + ("" if k < 4 * N_DISC else f" {chr(65 + k % 26)}{k}") for k, (di, ti) in enumerate(zip(d, t))]
        # Titles must be unique within a platform for COUNTER rows.
        seen: dict[str, int] = {}
        for k, x in enumerate(title):
            if x in seen:
                title[k] = f"{x} ({k})"
            seen[title[k]] = k
        codes.append(code)
        titles.append(title)
        issns.append([_issn(int(x)) for x in num])
        books.append(book)
        discs.append(d)
    zipf = np.cumsum(1.0 / np.arange(1, scale.journals + 1) ** 1.1)
    return Journals(codes, titles, issns, books, zipf, discs)


@dataclass
class EzproxyDay:
    lines: list[str]
    # per platform × journal: article views (investigations) and PDF downloads (requests)
    views: np.ndarray
    downloads: np.ndarray
    searches: np.ndarray     # per platform
    # For the ground truth, per line: second, platform, reader, what was asked for (one
    # number per URL), and whether it is a consultation (not a static file, redirect or failure).
    requests: dict[str, np.ndarray] = field(default_factory=dict)


def ezproxy_day(rng: np.random.Generator, day: Day, scale: Scale, library: Library, patrons: Patrons,
                journals: Journals) -> EzproxyDay:
    """EZproxy requests in reader sessions: pages, PDFs, searches, static assets, failures,
    and double clicks a few seconds apart."""
    n_pl = len(vocab.PLATFORMS)
    J = scale.journals
    n_sess = max(1, int(rng.poisson(scale.ezproxy_lines * day.online / 10.5)))
    size = rng.geometric(1 / 10.0, n_sess)
    sess = np.repeat(np.arange(n_sess), size)
    n = len(sess)
    start = draw_seconds(rng, n_sess, online=True)
    gap = rng.exponential(50.0, n).astype(np.int64) + 1
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    csum = np.cumsum(gap)
    secs = start[sess] + csum - (csum[first] - gap[first])[sess]
    w = np.array([p.weight for p in vocab.PLATFORMS])
    plat = rng.choice(n_pl, n_sess, p=w / w.sum())[sess]
    reader = patrons.draw(rng, "ezproxy", n_sess)
    anonymous = (rng.random(n_sess) < 0.06)[sess]
    campus = (rng.random(n_sess) < 0.7)
    ip_a = np.where(campus, 10, np.array([58, 101, 112, 223])[rng.integers(0, 4, n_sess)])
    ip_rest = np.where(campus, (reader * 2654435761) % (1 << 24), rng.integers(0, 1 << 24, n_sess))
    kind = rng.choice(4, n, p=[0.38, 0.17, 0.13, 0.32])          # article, pdf, search, static
    journal = np.searchsorted(journals.zipf_cum, rng.random(n) * journals.zipf_cum[-1], side="right")
    article = rng.integers(0, 100_000, n)
    asset = rng.integers(0, len(vocab.STATIC_ASSETS), n)
    query = rng.integers(0, len(QUERIES), n)
    fail = rng.random(n) < 0.035
    status = np.where(kind == 3, np.where(rng.random(n) < 0.2, 304, 200),
                      np.where((kind == 1) & (rng.random(n) < 0.25), 302, 200))
    status = np.where(fail, np.array([404, 403, 500])[rng.choice(3, n, p=[0.5, 0.3, 0.2])], status)
    size_b = np.select([status == 304, status == 302, status >= 400, kind == 3, kind == 1],
                       [np.zeros(n), np.full(n, 444.0), rng.lognormal(7.0, 0.4, n), rng.lognormal(9.5, 1.0, n),
                        rng.lognormal(13.5, 0.6, n)], rng.lognormal(11.0, 0.5, n)).astype(np.int64)
    # Double clicks: the same request again 1–29 s later.
    again = np.flatnonzero((kind <= 1) & (rng.random(n) < 0.06))
    idx = np.concatenate([np.arange(n), again])
    secs = np.concatenate([secs, secs[again] + rng.integers(1, 30, len(again))])
    keep = secs < 86_400            # sessions running past midnight are cut off
    idx, secs = idx[keep], secs[keep]
    order = np.lexsort((idx, secs))
    idx, secs = idx[order], secs[order]
    s_of = sess[idx]
    p, k, j = plat[idx], kind[idx], journal[idx]
    ok = (status[idx] == 200)
    views = np.bincount((p * J + j)[ok & (k == 0)], minlength=n_pl * J).reshape(n_pl, J)
    downloads = np.bincount((p * J + j)[ok & (k == 1)], minlength=n_pl * J).reshape(n_pl, J)
    searches = np.bincount(p[ok & (k == 2)], minlength=n_pl)
    host = pl.Series([f"https://{x.host}:443" for x in vocab.PLATFORMS])
    pre = pl.Series([s for x in vocab.PLATFORMS for s in (x.article[0], x.pdf[0], x.search, "/")])
    mid = pl.Series([s for x in vocab.PLATFORMS for s in (x.article[1], x.pdf[1], "", "")])
    post = pl.Series([s for x in vocab.PLATFORMS for s in (x.article[2], x.pdf[2], "", "")])
    code = pl.Series([c for cs in journals.code for c in cs])
    qenc = pl.Series([quote(q) for q in QUERIES])
    assets = pl.Series(vocab.STATIC_ASSETS)
    pk = p * 4 + k
    is_doc = k <= 1
    part1 = np.where(is_doc, code.gather(p * J + j).to_numpy(),
                     np.where(k == 2, qenc.gather(query[idx]).to_numpy(), assets.gather(asset[idx]).to_numpy()))
    num = pl.Series(article[idx]).cast(pl.Utf8).str.zfill(5)
    part2 = np.where(is_doc, num.to_numpy(), "")
    d = day.date
    stamp = f"[{d.day:02d}/{MONTHS[d.month - 1]}/{d.year}:"
    df = pl.DataFrame({
        "ip": pl.Series(ip_a[s_of]).cast(pl.Utf8) + "." + pl.Series(ip_rest[s_of] >> 16).cast(pl.Utf8) + "."
              + pl.Series((ip_rest[s_of] >> 8) & 255).cast(pl.Utf8) + "." + pl.Series(ip_rest[s_of] & 255 | 1).cast(pl.Utf8),
        "user": pl.Series(patrons.card[reader[s_of]]).cast(pl.Utf8),
        "anon": anonymous[idx],
        "t": hms(secs),
        "host": host.gather(p), "pre": pre.gather(pk), "p1": part1, "mid": mid.gather(pk), "p2": part2,
        "post": post.gather(pk), "status": status[idx], "bytes": size_b[idx],
    })
    lines = concat_lines([
        pl.col("ip"), pl.lit("-"), pl.when(pl.col("anon")).then(pl.lit("-")).otherwise(pl.col("user")),
        pl.lit(stamp) + pl.col("t") + pl.lit(f" {utc_offset(library, d)}]"),
        pl.lit('"GET ') + pl.col("host") + pl.col("pre") + pl.col("p1") + pl.col("mid") + pl.col("p2")
        + pl.col("post") + pl.lit(' HTTP/1.1"'),
        pl.col("status").cast(pl.Utf8), pl.col("bytes").cast(pl.Utf8)], df, sep=" ")
    target = np.where(k <= 1, j * 100_000 + article[idx], np.where(k == 2, query[idx], asset[idx]))
    requests = {"secs": secs, "platform": p, "reader": reader[s_of], "url": pk * (J * 100_000) + target,
                "access": (k != 3) & ((status[idx] < 300) | (status[idx] == 304))}
    return EzproxyDay(lines, views, downloads, searches, requests)
