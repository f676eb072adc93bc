"""The demo library's marts find what the generator planted in it.

The synthetic library has known truths: each discipline's courses set reading lists whose
titles their readers borrow together, and from the second month on readers of one discipline
(vocab.EBOOK_SHIFT_DISCIPLINE, CLC class F) read e-books instead of print. The demo run
(small scale, September and October) must recommend reading-list pairs, list the planted fall
with the rising e-book use beside it, and forecast seats better than the naive baseline."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from generator import generate, vocab
from generator.core import catalogue_of
from tests.published import run_every_stage
from warehouse.lake.views import compute_connection
from warehouse.settings import Settings

pytestmark = pytest.mark.slow

SEED, START, DAYS = 42, dt.date(2025, 9, 1), 61      # what `shuku demo` generates


@pytest.fixture(scope="module")
def demo(tmp_path_factory, library):
    settings = Settings(tmp_path_factory.mktemp("demo") / "home").ensure()
    generate(settings.landing, library, scale="small", seed=SEED, start=START, days=DAYS)
    run_every_stage(settings, library)
    con = compute_connection(settings)
    try:
        marts = {name: con.sql(f"select * from marts.{name}").pl()
                 for name in ("also_borrowed", "subject_borrowing_decline", "seat_demand_backtest")}
        isbn_bib = dict(con.execute("select isbn, bib_id from core.dim_title where isbn is not null").fetchall())
    finally:
        con.close()
    # The generator's own catalogue, drawn again from the seed: its reading lists by ISBN.
    cat = catalogue_of(library, "small", SEED, START)
    courses = [{isbn_bib[str(cat.isbn[t])] for t in row if str(cat.isbn[t]) in isbn_bib} for row in cat.course_titles]
    return marts, courses


def test_recommendations_come_from_reading_lists(demo):
    marts, courses = demo
    pairs = marts["also_borrowed"]
    assert pairs.height >= 10, pairs
    on_a_list = [any({a, b} <= course for course in courses) for a, b in pairs.select("bib_id", "also_bib_id").rows()]
    # Popular titles may be borrowed together by chance; most recommendations are course reading.
    assert sum(on_a_list) / len(on_a_list) >= 0.8, pairs
    assert pairs["readers"].min() >= 5


def test_the_planted_fall_is_listed_with_rising_ebook_use(demo):
    marts, _ = demo
    falls = marts["subject_borrowing_decline"].filter(pl.col("comparison") == "month_over_month")
    planted = falls.filter(pl.col("discipline_code") == "F")
    assert planted.height == 1, falls
    row = planted.row(0, named=True)
    assert row["loan_month"] == dt.date(2025, 10, 1) and row["baseline_month"] == dt.date(2025, 9, 1)
    assert row["change"] < -vocab.EBOOK_SHIFT * 0.6
    assert row["eresource_requests"] > row["baseline_eresource_requests"] * (1 + vocab.EBOOK_SHIFT * 0.5)
    # The planted fall is the largest; the other disciplines move by chance alone.
    assert falls.sort("change")["discipline_code"][0] == "F"
    assert falls.filter(pl.col("discipline_code") != "F").height <= 3, falls


def test_the_forecast_beats_the_naive_baseline_over_two_months(demo):
    marts, _ = demo
    mean = marts["seat_demand_backtest"].group_by("method").agg(pl.col("mape").mean(), pl.col("peak_error").mean())
    by = {r["method"]: r for r in mean.iter_rows(named=True)}
    assert by["profile_calendar"]["mape"] < by["naive_seasonal"]["mape"]
    assert by["profile_calendar"]["peak_error"] < by["naive_seasonal"]["peak_error"]
