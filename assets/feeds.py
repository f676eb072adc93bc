"""The landing feeds: which files each staging table is loaded from, and by which parser.

One entry per feed. The Dagster assets, the landing sensor and ``shuku parse`` all read
this table, so a new feed is declared here once.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl

from assets.cards import CardField
from assets.parsing import ParseResult
from schemas.model import contract_for
from warehouse.library import EZPROXY_FOLDER, Library


@dataclass(frozen=True)
class FileFormat:
    """One kind of file a feed loads: its file names and the parser that reads them."""

    pattern: str                 # file name regex; group `key` holds the date or month
    parser: str                  # "module:function" returning a ParseResult

    @property
    def cards(self) -> CardField | None:
        """Where its files name the reader: the ``CARDS`` its parser module declares (None: nowhere)."""
        return importlib.import_module(self.parser.split(":")[0]).CARDS


@dataclass(frozen=True)
class Feed:
    """A kind of landing file and the staging tables it loads."""

    name: str                    # asset-group friendly name, e.g. "circulation"
    source: str                  # quarantine.<source> and `shuku parse SOURCE`
    tables: tuple[str, ...]      # staging tables written; the first gets the quarantine
    folder: str                  # under landing/
    pattern: str                 # file name regex; group `key` holds the date or month
    parser: str                  # "module:function" returning a ParseResult
    description: str
    extra_frames: tuple[str, ...] = ()   # ParseResult.metadata keys holding tables[1:]
    # Further formats loaded into the same tables and partitions (FOLIO loans beside Koha).
    more_formats: tuple[FileFormat, ...] = ()
    # meta.<table> written per partition from each file's ParseResult: (table, "module:function"),
    # the function called as f(source_file, key, result, file_sha256) and returning the file's rows.
    meta_tables: tuple[tuple[str, str], ...] = ()
    export: str = ""             # what a file of the feed is, in the library's words ("turnstile export")
    harvested_by: str | None = None   # the table whose asset fetches the feed's files (a run loads after it)
    # "module:function" giving the partition keys a file belongs to, when a file may cover several
    # (a COUNTER report of a year); then each key is loaded from every file that covers it, and a
    # file's name only places it in a folder. Empty: a file belongs to the key in its name alone.
    coverage: str = ""

    @property
    def partitioning(self) -> str | None:
        """DAY, MONTH or None (latest snapshot only), as the contract of its staging tables says."""
        return contract_for(f"staging.{self.tables[0]}").partitioning

    @property
    def expected(self) -> str:
        """What a file of this feed should be, for messages about one that is not."""
        return self.export or self.description.rstrip(".")

    @property
    def formats(self) -> tuple[FileFormat, ...]:
        return (FileFormat(self.pattern, self.parser), *self.more_formats)

    def format_of(self, path: Path) -> FileFormat | None:
        """The format a landing file's name says it is, or None if it is not this feed's."""
        return next((f for f in self.formats if re.fullmatch(f.pattern, path.name)), None)

    def parse(self, path: Path, library: Library) -> ParseResult:
        fmt = self.format_of(Path(path)) or self.formats[0]
        module, function = fmt.parser.split(":")
        return getattr(importlib.import_module(module), function)(path, library)

    def parse_batches(self, path: Path, library: Library) -> Iterator[ParseResult]:
        """``parse`` a batch at a time, where the format's parser can (see ``parser_batches``)."""
        fmt = self.format_of(Path(path)) or self.formats[0]
        return parser_batches(fmt.parser, path, library)

    def split(self, result: ParseResult) -> dict[str, pl.DataFrame]:
        """The frames for each staging table (a MARC file yields records and items)."""
        frames = {self.tables[0]: result.rows}
        for table, key in zip(self.tables[1:], self.extra_frames, strict=True):
            frames[table] = result.metadata[key]
        return frames

    def key_of(self, path: Path) -> str | None:
        """The partition key a landing file belongs to (its date or month), or None if not this feed's."""
        fmt = self.format_of(path)
        if fmt is None:
            return None
        return re.fullmatch(fmt.pattern, path.name).groupdict().get("key") or ""

    def keys_of(self, path: Path) -> tuple[str, ...]:
        """Every partition key a landing file of this feed belongs to."""
        if self.coverage:
            module, function = self.coverage.split(":")
            return tuple(getattr(importlib.import_module(module), function)(path))
        key = self.key_of(path)
        return () if key is None else (key,)

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
        return [p for p in files if key in self.keys_of(p)]


FEEDS: tuple[Feed, ...] = (
    Feed("circulation", "circulation", ("circulation_event",), "circulation",
         r"statistics_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?",
         "assets.circulation.koha:parse", "Koha statistics export, FOLIO loans and check-ins (issue, return, renew, local use).",
         export="Koha statistics export or FOLIO loans or check-ins file",
         more_formats=(FileFormat(r"folio_loans_(?P<key>\d{4}-\d{2}-\d{2})\.json(l)?(\.gz)?",
                                  "assets.circulation.folio:parse"),
                       FileFormat(r"folio_check_ins_(?P<key>\d{4}-\d{2}-\d{2})\.json(l)?(\.gz)?",
                                  "assets.circulation.folio_check_ins:parse"))),
    Feed("holds", "holds", ("hold",), "circulation",
         r"holds_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?",
         "assets.circulation.holds:parse", "Koha holds (reserves) export and FOLIO requests: the holds placed each day.",
         export="Koha holds (reserves) export or FOLIO requests file",
         more_formats=(FileFormat(r"folio_requests_(?P<key>\d{4}-\d{2}-\d{2})\.json(l)?(\.gz)?",
                                  "assets.circulation.folio_requests:parse"),)),
    Feed("patrons", "patrons", ("patron",), "patrons",
         r"patrons_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?",
         "assets.patrons.ils:parse", "ILS patron export (latest snapshot).", export="ILS patron export"),
    Feed("searches", "searches", ("search",), "opac",
         r"search_history_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?",
         "assets.opac.searches:parse", "OPAC search history.", export="OPAC search history export"),
    Feed("catalogue", "marc", ("bib_record", "item"), "catalogue",
         r"catalogue_(?P<key>\d{4}-\d{2}-\d{2})\.(mrc|marc|dat|xml)(\.gz)?",
         "assets.opac.marc:parse", "MARC21 catalogue export with 952 holdings (latest snapshot).",
         extra_frames=("items",), export="MARC21 or MARCXML catalogue export"),
    Feed("counter", "counter", ("counter_usage",), "counter",
         r"[^/]*_(?P<key>\d{4}-\d{2})\.(tsv|csv|json|xlsx)(\.gz)?",
         "assets.eresources.counter:parse", "COUNTER R5/R5.1 reports (TR, DR, PR, IR).", export="COUNTER R5/R5.1 report",
         meta_tables=(("counter_exceptions", "assets.eresources.exceptions:exception_rows"),
                      ("counter_reports", "assets.eresources.reports:report_rows")),
         coverage="assets.eresources.deliveries:months_of", harvested_by="meta.counter_harvest"),
    Feed("ezproxy", "ezproxy", ("ezproxy_access",), EZPROXY_FOLDER,
         r"ezproxy_(?P<key>\d{4}-\d{2}-\d{2})\.log(\.gz)?",
         "assets.eresources.ezproxy:parse", "EZproxy logs in the LogFormat of their landing folder.",
         export="EZproxy log in its folder's LogFormat"),
    Feed("turnstile", "gates", ("gate_event",), "gates",
         r"turnstile_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?",
         "assets.gates.exports:parse_turnstile", "Turnstile events.", export="turnstile export"),
    Feed("gate_counter", "gates", ("gate_count",), "gates",
         r"counter_(?P<key>\d{4}-\d{2}-\d{2})\.csv(\.gz)?",
         "assets.gates.exports:parse_counter", "Cumulative people-counter export.",
         export="people-counter export"),
)


def feed_named(name: str) -> Feed:
    for feed in FEEDS:
        if feed.name == name:
            return feed
    raise KeyError(name)


ParserFn = Callable[[Path, Library], ParseResult]


def parser_batches(parser: str, path: Path, library: Library) -> Iterator[ParseResult]:
    """A parser's results a batch at a time: its module's ``<function>_batches`` (each batch a run of the
    file's lines or records, numbered as in the file), else the whole file as one result."""
    module, function = parser.split(":")
    found = importlib.import_module(module)
    batched = getattr(found, f"{function}_batches", None)
    if batched is not None:
        yield from batched(path, library)
    else:
        yield getattr(found, function)(path, library)


def source_parser(source: str) -> str:
    """The parser `shuku parse SOURCE` uses: it recognises the format within the source itself."""
    # Sources with several formats have a parser that tells them apart by their bytes.
    if source == "gates":
        return "assets.gates.exports:parse"
    if source == "circulation":
        return "assets.circulation:parse"
    if source == "holds":
        return "assets.circulation:parse_holds"
    for feed in FEEDS:
        if feed.source == source:
            return feed.parser
    raise KeyError(source)
