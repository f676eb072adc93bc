"""Ingest: parsers never crash on generated files; a crashing parser leaves stored data alone."""

import datetime as dt

import polars as pl
import pytest

from assets.feeds import FEEDS, Feed, feed_named
from assets.ingest import ParserFailure, ingest_partition
from generator import generate
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings


def exploding_parser(path, library):
    raise IndexError("simulated parser bug")


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory, library):
    settings = Settings(tmp_path_factory.mktemp("small") / "home").ensure()
    generate(settings.landing, library, scale="small", seed=42, start=dt.date(2025, 9, 1), days=28)
    return settings


def test_every_file_of_a_small_month_parses(small_landing, library):
    """Regression: polars 2.1 panicked on some of these files (frames built from filtered slices)."""
    parsed = 0
    for feed in FEEDS:
        for path in feed.files(small_landing.landing):
            result = feed.parse(path, library)
            assert result.rows_read == result.rows.height + result.rejects.height
            parsed += 1
    assert parsed > 150


def test_a_parser_crash_names_the_file_and_keeps_the_stored_partition(small_landing, library):
    settings = small_landing
    pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
    feed = feed_named("turnstile")
    ingest_partition(feed, "2025-09-02", settings, library, pseudonymiser, "run-1")
    stored = settings.lake / "staging" / "gate_event" / "event_date=2025-09-02" / "part-0.parquet"
    before = stored.read_bytes()
    broken = Feed(**{**feed.__dict__, "parser": "tests.test_ingest:exploding_parser"})
    with pytest.raises(ParserFailure, match=r"gates/turnstile_2025-09-02\.csv\.gz: the turnstile parser failed \(IndexError\)"):
        ingest_partition(broken, "2025-09-02", settings, library, pseudonymiser, "run-2")
    assert stored.read_bytes() == before
    assert pl.read_parquet(stored).height > 0
