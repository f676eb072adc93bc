"""Koha ``statistics``-style circulation export: one line per issue, return, renewal or local use.

``circulation/statistics_YYYY-MM-DD.csv``, header
``datetime,branch,type,itemnumber,itemtype,location,cardnumber,ccode,categorycode``.
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
    format="koha-statistics-csv",
    title="Koha circulation statistics export",
    columns=("datetime", "branch", "type", "itemnumber", "itemtype", "location",
             "cardnumber", "ccode", "categorycode"),
    table="circulation_event",
    source="circulation",
    card="cardnumber",
)
CARDS = CsvCard(LAYOUT.card)

# Columns of FOLIO's item UUIDs: a Koha export names the item by its number alone.
FOLIO_ONLY = ("item_id", "item_barcode", "call_number", "item_resolution")
# A loan or renewal belongs to a reader; a return may come anonymised, local use has none.
CARD_REQUIRED_FOR = ("issue", "renew")


def checks(library: Library) -> list[cp.Check]:
    events = contract_for(f"staging.{LAYOUT.table}")
    is_loan = pl.col("type").is_in(CARD_REQUIRED_FOR)
    return [
        cp.required("datetime"),
        cp.timestamp("datetime"),
        cp.required("branch"),
        cp.one_of("branch", (b.code for b in library.branches)),
        cp.required("type"),
        cp.one_of("type", events.allowed_values("event_type")),
        # Every Koha statistic, local use included, is about one item.
        cp.required("itemnumber"),
        cp.integer("itemnumber", minimum=1),
        cp.required(LAYOUT.card, when=is_loan, why=" but an issue or renewal needs the reader's card"),
        cp.one_of("categorycode", events.allowed_values("category_code")),
    ]


def row_columns() -> dict[str, pl.Expr]:
    event_at = cp.parse_datetime("datetime")
    return {
        "event_at": event_at,
        "event_date": event_at.dt.date(),
        "branch_code": pl.col("branch"),
        "event_type": pl.col("type"),
        "item_number": cp.parse_integer("itemnumber"),
        **{column: pl.lit(None) for column in FOLIO_ONLY},
        "item_type": cp.null_if_empty("itemtype"),
        "location": cp.null_if_empty("location"),
        "collection_code": cp.null_if_empty("ccode"),
        "category_code": cp.null_if_empty("categorycode"),
        CARD_NUMBER: cp.null_if_empty(LAYOUT.card),
    }


def parse(path: Path, library: Library) -> ParseResult:
    """Typed circulation events of one statistics file, and its rejected lines."""
    return cp.parse_csv(path, LAYOUT, checks(library), row_columns(), library)


def parse_batches(path: Path, library: Library) -> Iterator[ParseResult]:
    """``parse`` a batch of lines at a time: the circulation events, in bounded memory."""
    return cp.parse_csv_batches(path, LAYOUT, checks(library), row_columns(), library)
