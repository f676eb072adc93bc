"""The landing feeds: which files each staging table is loaded from, and by which parser.

One entry per feed. The Dagster assets, the landing sensor and ``shuku parse`` all read
this table, so a new feed is declared here once.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl

from assets.parsing import ParseResult
from warehouse.library import Library

DAY = "day"
MONTH = "month"


@dataclass(frozen=True)
class Feed:
    """A kind of landing file and the staging tables it loads."""

    name: str                    # asset-group friendly name, e.g. "circulation"
    source: str                  # quarantine.<source> and `shuku parse SOURCE`
    tables: tuple[str, ...]      # staging tables written; the first gets the quarantine
    folder: str                  # under landing/
    pattern: str                 # file name regex; group `key` holds the date or month
    partitioning: str | None     # DAY, MONTH or None (latest snapshot only)
    parser: str                  # "module:function" returning a ParseResult
    description: str
    extra_frames: tuple[str, ...] = ()   # ParseResult.metadata keys holding tables[1:]

    def parse(self, path: Path, library: Library) -> ParseResult:
        module, function = self.parser.split(":")
        return getattr(importlib.import_module(module), function)(path, library)

    def split(self, result: ParseResult) -> dict[str, pl.DataFrame]:
        """The frames for each staging table (a MARC file yields records and items)."""
        frames = {self.tables[0]: result.rows}
        for table, key in zip(self.tables[1:], self.extra_frames, strict=True):
            frames[table] = result.metadata[key]
        return frames

    def _regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    def key_of(self, path: Path) -> str | None:
        """The partition key a landing file belongs to (its date or month), or None if not this feed's."""
        match = self._regex().fullmatch(path.name)
        if not match:
            return None
        return match.groupdict().get("key") or ""

    def files(self, landing: Path) -> list[Path]:
        folder = landing / self.folder
        if not folder.exists():
            return []
        return sorted(p for p in folder.rglob("*") if p.is_file() and self.key_of(p) is not None)

    def files_for(self, landing: Path, key: str | None) -> list[Path]:
        """The files of one partition; for a snapshot feed, the newest file only."""
        files = self.files(landing)
        if self.partitioning is None:
            return files[-1:] if files else []
        return [p for p in files if self.key_of(p) == key]


FEEDS: tuple[Feed, ...] = (
    Feed("circulation", "circulation", ("circulation_event",), "circulation",
         r"statistics_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?", DAY,
         "assets.circulation.koha:parse", "Koha statistics export (issue, return, renew, local use)."),
    Feed("patrons", "patrons", ("patron",), "patrons",
         r"patrons_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?", None,
         "assets.patrons.ils:parse", "ILS patron export (latest snapshot)."),
    Feed("searches", "searches", ("search",), "opac",
         r"search_history_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?", DAY,
         "assets.opac.searches:parse", "OPAC search history."),
    Feed("catalogue", "marc", ("bib_record", "item"), "catalogue",
         r"catalogue_(?P<key>\d{4}-\d{2}-\d{2})\.(mrc|marc|dat|xml)(\.gz)?", None,
         "assets.opac.marc:parse", "MARC21 catalogue export with 952 holdings (latest snapshot).",
         extra_frames=("items",)),
    Feed("counter", "counter", ("counter_usage",), "counter",
         r"[^/]*_(?P<key>\d{4}-\d{2})\.(tsv|csv|json)(\.gz)?", MONTH,
         "assets.eresources.counter:parse", "COUNTER R5/R5.1 reports (TR, DR, PR, IR)."),
    Feed("ezproxy", "ezproxy", ("ezproxy_access",), "ezproxy",
         r"ezproxy_(?P<key>\d{4}-\d{2}-\d{2})\.log(\.gz)?", DAY,
         "assets.eresources.ezproxy:parse", "EZproxy logs in the configured LogFormat."),
    Feed("turnstile", "gates", ("gate_event",), "gates",
         r"turnstile_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?", DAY,
         "assets.gates.exports:parse_turnstile", "Turnstile events."),
    Feed("gate_counter", "gates", ("gate_count",), "gates",
         r"counter_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?", DAY,
         "assets.gates.exports:parse_counter", "Cumulative people-counter export."),
)

SOURCES = tuple(dict.fromkeys(f.source for f in FEEDS))


def feed_named(name: str) -> Feed:
    for feed in FEEDS:
        if feed.name == name:
            return feed
    raise KeyError(name)


def partition_date(key: str, partitioning: str) -> dt.date:
    return dt.date.fromisoformat(key if partitioning == DAY else f"{key}-01")


ParserFn = Callable[[Path, Library], ParseResult]


def source_parser(source: str) -> str:
    """The parser `shuku parse SOURCE` uses: it recognises the format within the source itself."""
    if source == "gates":
        return "assets.gates.exports:parse"
    for feed in FEEDS:
        if feed.source == source:
            return feed.parser
    raise KeyError(source)
