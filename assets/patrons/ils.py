"""ILS patron export (GB18030 in the demo): one line per reader card.

``patrons/patrons_YYYY-MM-DD.csv``, header ``cardnumber,surname,firstname,categorycode,
college,department,enrolment_year,email,phone,dateenrolled,profiling_consent``.
Surname, first name, e-mail and phone are direct identifiers: they are never cut out of
the line, so they cannot reach a row, a detail or the metadata. A rejected line keeps
its raw text, which the ingest step stores in the restricted area only.
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
    format="ils-patron-csv",
    title="ILS patron export",
    columns=("cardnumber", "surname", "firstname", "categorycode", "college", "department",
             "enrolment_year", "email", "phone", "dateenrolled", "profiling_consent"),
    table="patron",
    source="patrons",
    card="cardnumber",
    keep=("cardnumber", "categorycode", "college", "department", "enrolment_year",
          "dateenrolled", "profiling_consent"),
)
CARDS = CsvCard(LAYOUT.card)
CONSENT = {"Y": True, "N": False}


def checks() -> list[cp.Check]:
    # Values of a patron line are never quoted in a detail: a shifted column could be a name.
    return [
        cp.required(LAYOUT.card),
        cp.required("categorycode"),
        # Reader categories: undergraduate, postgraduate, staff, alumni, public reader, organisation.
        cp.one_of("categorycode", contract_for(f"staging.{LAYOUT.table}").allowed_values("category_code"), show=False),
        cp.integer("enrolment_year", minimum=1900, show=False),
        cp.timestamp("dateenrolled", cp.DATE_FORMAT, show=False),
        cp.one_of("profiling_consent", CONSENT, show=False),
    ]


def row_columns() -> dict[str, pl.Expr]:
    return {
        CARD_NUMBER: pl.col(LAYOUT.card),
        "category_code": pl.col("categorycode"),
        "college": cp.null_if_empty("college"),
        "department": cp.null_if_empty("department"),
        "enrolment_year": cp.parse_integer("enrolment_year"),
        "enrolled_date": cp.parse_datetime("dateenrolled", cp.DATE_FORMAT),
        "profiling_consent": pl.col("profiling_consent").replace_strict(CONSENT, default=None, return_dtype=pl.Boolean),
    }


def parse(path: Path, library: Library) -> ParseResult:
    """Reader records of one patron export (without direct identifiers), and its rejected lines."""
    return cp.parse_csv(path, LAYOUT, checks(), row_columns(), library)


def parse_batches(path: Path, library: Library) -> Iterator[ParseResult]:
    """``parse`` a batch of lines at a time: the reader records, in bounded memory."""
    return cp.parse_csv_batches(path, LAYOUT, checks(), row_columns(), library)
