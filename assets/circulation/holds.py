"""Koha holds (``reserves``) export: one line per hold a reader placed on a title or an item.

``circulation/holds_YYYY-MM-DD.csv`` holds the holds placed that day, header
``timestamp,reserve_id,branchcode,cardnumber,biblionumber,itemnumber``. ``biblionumber``
is the bibliographic record's control number as the catalogue export carries it in MARC 001;
``itemnumber`` is empty for a title-level hold (the usual kind) and names the copy otherwise.
``branchcode`` is where the reader picks the book up.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from assets import csvparse as cp
from assets.cards import CsvCard
from assets.circulation.koha import FOLIO_ONLY as FOLIO_ITEM
from assets.parsing import CARD_NUMBER, ParseResult
from warehouse.library import Library

LAYOUT = cp.CsvLayout(
    format="koha-reserves-csv",
    title="Koha holds (reserves) export",
    columns=("timestamp", "reserve_id", "branchcode", "cardnumber", "biblionumber", "itemnumber"),
    table="hold",
    source="holds",
    card="cardnumber",
)
CARDS = CsvCard(LAYOUT.card)
# Columns only FOLIO requests fill.
FOLIO_ONLY = (*FOLIO_ITEM, "instance_id", "request_type")


def checks(library: Library) -> list[cp.Check]:
    return [
        cp.required("timestamp"),
        cp.timestamp("timestamp"),
        cp.required("reserve_id"),
        cp.integer("reserve_id", minimum=1),
        cp.required("branchcode"),
        cp.one_of("branchcode", (b.code for b in library.branches)),
        # A hold is always some reader's: without the card it cannot be filled.
        cp.required(LAYOUT.card),
        cp.required("biblionumber"),
        cp.integer("itemnumber", minimum=1),
    ]


def row_columns() -> dict[str, pl.Expr]:
    placed_at = cp.parse_datetime("timestamp")
    return {
        "placed_at": placed_at,
        "event_date": placed_at.dt.date(),
        "reserve_id": cp.parse_integer("reserve_id"),   # as text, without leading zeros
        "pickup_branch_code": pl.col("branchcode"),
        "bib_id": pl.col("biblionumber").str.strip_chars(),
        "item_number": cp.parse_integer("itemnumber"),
        **{column: pl.lit(None) for column in FOLIO_ONLY},
        CARD_NUMBER: cp.null_if_empty(LAYOUT.card),
    }


def parse(path: Path, library: Library) -> ParseResult:
    """Typed holds of one reserves file, and its rejected lines."""
    return cp.parse_csv(path, LAYOUT, checks(library), row_columns(), library)


def parse_batches(path: Path, library: Library) -> Iterator[ParseResult]:
    """``parse`` a batch of lines at a time: the holds, in bounded memory."""
    return cp.parse_csv_batches(path, LAYOUT, checks(library), row_columns(), library)
