"""Entrance gates: turnstile event files and cumulative people-counter exports.

``gates/turnstile_YYYY-MM-DD.csv.gz`` (``time,gate,direction,card,result``) and
``gates/counter_YYYY-MM-DD.csv`` (``timestamp,sensor,in_total,out_total``). ``parse``
tells the two apart by their header, so a misnamed file is still read right.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from assets import csvparse as cp
from assets.cards import CsvCard
from assets.parsing import CARD_NUMBER, ParseResult
from assets.reading import SHOWN, LandingText, sniff_text
from schemas.model import contract_for
from warehouse.library import Library
from warehouse.textio import LandingFileError

TURNSTILE = cp.CsvLayout(
    format="turnstile-csv",
    title="turnstile event export",
    columns=("time", "gate", "direction", "card", "result"),
    table="gate_event",
    source="gates",
    card="card",
)
COUNTER = cp.CsvLayout(
    format="people-counter-csv",
    title="people-counter export",
    columns=("timestamp", "sensor", "in_total", "out_total"),
    table="gate_count",
    source="gates",
)
CARDS = CsvCard(TURNSTILE.card, COUNTER.card)


def turnstile_checks(library: Library) -> list[cp.Check]:
    events = contract_for(f"staging.{TURNSTILE.table}")
    return [
        cp.required("time"),
        cp.timestamp("time"),
        cp.required("gate"),
        cp.one_of("gate", library.gate_zone()),
        cp.required("direction"),
        cp.one_of("direction", events.allowed_values("direction")),
        cp.required("result"),
        cp.one_of("result", events.allowed_values("result")),
        # A gate opens for a card; a denial may come from an unreadable card.
        cp.required(TURNSTILE.card, when=pl.col("result") == "PASS", why=" but the gate let someone through"),
    ]


def turnstile_columns() -> dict[str, pl.Expr]:
    event_at = cp.parse_datetime("time")
    return {
        "event_at": event_at,
        "event_date": event_at.dt.date(),
        "gate_code": pl.col("gate"),
        "direction": pl.col("direction"),
        "result": pl.col("result"),
        CARD_NUMBER: cp.null_if_empty(TURNSTILE.card),
    }


def counter_checks(library: Library) -> list[cp.Check]:
    return [
        cp.required("timestamp"),
        cp.timestamp("timestamp"),
        cp.required("sensor"),
        cp.one_of("sensor", library.sensor_zone()),
        cp.required("in_total"),
        cp.integer("in_total", minimum=0),
        cp.required("out_total"),
        cp.integer("out_total", minimum=0),
    ]


def counter_columns() -> dict[str, pl.Expr]:
    counted_at = cp.parse_datetime("timestamp")
    return {
        "counted_at": counted_at,
        "event_date": counted_at.dt.date(),
        "sensor_code": pl.col("sensor"),
        "in_total": cp.parse_integer("in_total"),
        "out_total": cp.parse_integer("out_total"),
    }


def parse_turnstile(path: Path, library: Library, text: LandingText | None = None) -> ParseResult:
    """Gate passages of one turnstile file, and its rejected lines."""
    return cp.parse_csv(path, TURNSTILE, turnstile_checks(library), turnstile_columns(), library, text)


def parse_counter(path: Path, library: Library, text: LandingText | None = None) -> ParseResult:
    """Cumulative in/out totals of one people-counter file, and its rejected lines."""
    return cp.parse_csv(path, COUNTER, counter_checks(library), counter_columns(), library, text)


def parse(path: Path, library: Library) -> ParseResult:
    """A gates file of either kind, recognised from its header (``ParseResult.format`` says which)."""
    text = cp.read_landing(Path(path), TURNSTILE, library)
    header = cp.first_line(text.data)
    if text.blank:
        return (parse_counter if Path(path).name.startswith("counter") else parse_turnstile)(path, library, text)
    if header is not None and cp.matches(header, TURNSTILE):
        return parse_turnstile(path, library, text)
    if header is not None and cp.matches(header, COUNTER):
        return parse_counter(path, library, text)
    # A headerless file shows a data line here: its card number is masked.
    shown = None if header is None else re.sub(library.card_number_pattern, "<card number>", header[:SHOWN])
    raise LandingFileError(
        f"{path}: line 1: the header {shown!r} is neither a {TURNSTILE.title} "
        f"({','.join(TURNSTILE.columns)!r}) nor a {COUNTER.title} ({','.join(COUNTER.columns)!r}); "
        f"check that the file belongs in landing/gates/ and that its first line is the header.{text.note()}")


def parse_batches(path: Path, library: Library) -> Iterator[ParseResult]:
    """``parse`` a batch of lines at a time, the kind told by the header; a header of neither kind,
    or none, is read whole by ``parse`` for its error."""
    header = sniff_text(Path(path)).split("\n", 1)[0].rstrip("\r")
    for layout, checks, columns in ((TURNSTILE, turnstile_checks, turnstile_columns),
                                    (COUNTER, counter_checks, counter_columns)):
        if header and cp.matches(header, layout):
            return cp.parse_csv_batches(path, layout, checks(library), columns(), library)
    return iter([parse(path, library)])
