"""OPAC search history (Koha ``search_history``-like): one line per search typed in the catalogue.

``opac/search_history_YYYY-MM-DD.csv``, header ``time,sessionid,cardnumber,query_desc,type,total``.
The query is kept as typed and normalised (NFKC, lower case, single spaces), so that
``ＤＡＴＡ  治理`` and ``data 治理`` count as the same search.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from assets import csvparse as cp
from assets.cards import CsvCard
from assets.parsing import CARD_NUMBER, ParseResult
from schemas.model import contract_for
from warehouse.library import Library

LAYOUT = cp.CsvLayout(
    format="koha-search-history-csv",
    title="OPAC search history export",
    columns=("time", "sessionid", "cardnumber", "query_desc", "type", "total"),
    table="search",
    source="searches",
    card="cardnumber",
)
CARDS = CsvCard(LAYOUT.card)


def checks() -> list[cp.Check]:
    return [
        cp.required("time"),
        cp.timestamp("time"),
        cp.required("sessionid"),
        # A search without its text says nothing about what readers look for.
        cp.required("query_desc"),
        cp.required("type"),
        cp.one_of("type", contract_for(f"staging.{LAYOUT.table}").allowed_values("search_type")),
        cp.required("total"),
        cp.integer("total", minimum=0),
    ]


def normalise(query: pl.Expr) -> pl.Expr:
    """Full-width to half-width (NFKC), lower case, runs of white space as one space, trimmed."""
    return query.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def row_columns() -> dict[str, pl.Expr]:
    searched_at = cp.parse_datetime("time")
    hits = cp.parse_integer("total")
    return {
        "searched_at": searched_at,
        "event_date": searched_at.dt.date(),
        "session_id": pl.col("sessionid"),
        CARD_NUMBER: cp.null_if_empty(LAYOUT.card),
        "query_text": pl.col("query_desc"),
        "query_normalised": normalise(pl.col("query_desc")),
        "search_type": pl.col("type"),
        "hit_count": hits,
        "zero_hit": hits == 0,
    }


def parse(path: Path, library: Library) -> ParseResult:
    """Searches of one search-history file, and its rejected lines."""
    return cp.parse_csv(path, LAYOUT, checks(), row_columns(), library)


def parse_batches(path: Path, library: Library) -> Iterator[ParseResult]:
    """``parse`` a batch of lines at a time: the searches, in bounded memory."""
    return cp.parse_csv_batches(path, LAYOUT, checks(), row_columns(), library)
