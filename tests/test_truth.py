"""The published figures against the generator's ground truth (what truly happened).

One tiny library, nine days across a month end, through the real pipeline once. Every
expected number is counted from the truth files (generator.expected), less only the events
whose landing line the generator damaged on purpose; never from the warehouse again."""

from __future__ import annotations

import datetime as dt
import gzip

import polars as pl
import pytest

from generator import generate
from generator import expected
from tests.published import run_every_stage
from warehouse.lake.views import compute_connection
from warehouse.settings import Settings


SEED, START, DAYS = 11, dt.date(2025, 10, 25), 9          # October and November
MARTS = ("key_figures", "circulation_top_monthly", "space_utilisation", "eresource_top_monthly",
         "seat_demand_forecast")


def _lines(path) -> set[str]:
    """A landing file's distinct data lines (a duplicated line is one event)."""
    data = path.read_bytes()
    data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:          # some days' OPAC exports are GB18030
        text = data.decode("gb18030")
    return set(text.splitlines()[1:]) - {""}


def _well_formed(line: str, fields: int) -> list[str] | None:
    parts = line.split(",")
    try:
        dt.datetime.strptime(parts[0], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return parts if len(parts) == fields else None


def test_the_truth_marks_intact_exactly_the_events_whose_lines_read_well(tmp_path, library):
    """Read the landing lines with nothing but str.split: the well-formed lines are the
    truth's intact events, one for one."""
    settings = Settings(tmp_path / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=3, start=dt.date(2025, 9, 1), days=4)
    truth = settings.home / "truth"
    issues = [p for f in sorted((settings.landing / "circulation").glob("statistics_*.csv")) for line in _lines(f)
              if (p := _well_formed(line, 9)) and p[2] == "issue"]
    loans = expected.read(truth, "circulation/loans_*.parquet").filter(pl.col("intact"))
    assert sorted((p[0], int(p[3])) for p in issues) == sorted(
        (str(t), n) for t, n in loans.select("issued_at", "item_number").rows())
    passes = [p for f in sorted((settings.landing / "gates").glob("turnstile_*.csv.gz")) for line in _lines(f)
              if (p := _well_formed(line, 5))]
    gates = expected.read(truth, "gates/passages_*.parquet").filter(pl.col("intact"))
    assert sorted((p[0], p[2], p[4]) for p in passes) == sorted(
        (str(t), d, r) for t, d, r in gates.select("at", "direction", "result").rows())
    searches = [p for f in sorted((settings.landing / "opac").glob("search_history_*.csv")) for line in _lines(f)
                if (p := _well_formed(line, 6))]
    found = expected.read(truth, "opac/searches_*.parquet").filter(pl.col("intact"))
    assert sorted((p[0], int(p[5])) for p in searches) == sorted((str(t), h) for t, h in found.select("at", "hits").rows())
    # Lines were damaged, and their events are in the truth all the same.
    assert not expected.read(truth, "gates/passages_*.parquet")["intact"].all()
    assert not expected.read(truth, "opac/searches_*.parquet")["intact"].all()


@pytest.fixture(scope="module")
def built(tmp_path_factory, library):
    settings = Settings(tmp_path_factory.mktemp("truth") / "home").ensure()
    report = generate(settings.landing, library, scale="tiny", seed=SEED, start=START, days=DAYS)
    run_every_stage(settings, library)
    con = compute_connection(settings)
    try:
        marts = {name: con.sql(f"select * from marts.{name}").pl() for name in MARTS}
        disciplines = dict(con.execute(
            "select bib_id, discipline_code from core.dim_title where discipline_code is not null").fetchall())
    finally:
        con.close()
    return settings.home / "truth", report, marts, disciplines


@pytest.mark.slow
def test_truth_lives_beside_landing_and_marks_exactly_the_reported_damaged_lines(built):
    truth, report, *_ = built
    assert (truth.parent / "landing").is_dir() and not any((truth.parent / "landing").rglob("*.parquet"))
    defects = report.defects_by_source()

    def damaged(source: str) -> int:
        return sum(defects.get(source, {}).get(k, 0) for k in ("malformed_line", "bad_timestamp", "truncated_line"))

    # Issues are a part of the circulation lines; the other truths hold every line of their files.
    loans = expected.read(truth, "circulation/loans_*.parquet")
    assert 0 < (~loans["intact"]).sum() <= damaged("circulation")
    assert (~expected.read(truth, "opac/searches_*.parquet")["intact"]).sum() == damaged("searches")
    proxy = expected.read(truth, "ezproxy/accesses_*.parquet")
    assert (proxy["requests"] - proxy["intact_requests"]).sum() == damaged("ezproxy")
    turnstile = sum(f.defects.get(k, 0) for f in report.files if "turnstile_" in f.path
                    for k in ("malformed_line", "bad_timestamp", "truncated_line"))
    assert (~expected.read(truth, "gates/passages_*.parquet")["intact"]).sum() == turnstile
    # Double clicks happen, and the truth does not count them.
    assert (proxy["accesses"] < proxy["requests"]).any()


def _key(frame: pl.DataFrame) -> dict[tuple, dict]:
    return {(r["year"], r["month"]): r for r in frame.iter_rows(named=True)}


@pytest.mark.slow
@pytest.mark.parametrize("figure", [f for f in expected.KEY_FIGURES if f != "eresource_requests"])
def test_key_figures_match_the_truth(built, figure):
    truth, _, marts, _ = built
    want = _key(expected.key_figures(truth))
    got = _key(marts["key_figures"])
    assert set(got) == set(want) == {(2025, 10), (2025, 11), (2025, None)}
    assert {k: got[k][figure] for k in got} == {k: want[k][figure] for k in want}
    assert all(want[k][figure] > 0 for k in want), want


@pytest.mark.slow
def test_key_figures_eresource_requests_are_the_platforms_total_item_requests(built):
    """COUNTER's requests per month are the platforms' totals (what each PR says once), not a
    sum over the TR, PR and DR reports of the same use."""
    truth, _, marts, _ = built
    want = {k: r["eresource_requests"] for k, r in _key(expected.key_figures(truth)).items()}
    got = {k: r["eresource_requests"] for k, r in _key(marts["key_figures"]).items()}
    assert got == want


@pytest.mark.slow
def test_the_loan_top_list_is_the_truths(built):
    truth, _, marts, disciplines = built
    columns = ["loan_month", "scope", "scope_value", "rank", "bib_id", "loans", "readers", "previous_rank"]
    want = expected.circulation_top(truth, disciplines).select(columns)
    got = marts["circulation_top_monthly"].select(columns).sort(columns[:4])
    assert want.height > 40 and set(want["scope"]) == {"overall", "category", "discipline"}
    assert got.rows() == want.sort(columns[:4]).rows()


@pytest.mark.slow
def test_hourly_entries_exits_and_peaks_per_zone_are_the_truths(built):
    truth, _, marts, _ = built
    keys = ["zone_code", "event_date", "event_hour"]
    want = expected.zone_hours(truth)
    got = marts["space_utilisation"].select(keys + ["entries", "exits", "occupancy_peak"])
    moved = pl.col("entries") + pl.col("exits") > 0
    assert got.filter(moved).select(keys + ["entries", "exits"]).sort(keys).rows() == \
        want.filter(moved).select(keys + ["entries", "exits"]).sort(keys).rows()
    # Where every turnstile line of the zone and day is intact, the peak is the true one: with
    # the readers already inside when the hour began, and in hours nobody passed a gate.
    clean = want.filter(pl.col("clean"))
    assert clean.height > 50
    assert clean.filter(~moved & (pl.col("occupancy_peak") > 0)).height > 0
    assert clean.filter(pl.col("occupancy_at_start") == pl.col("occupancy_peak")).height > 0
    joined = clean.join(got, on=keys, how="left", suffix="_published")
    wrong = joined.filter(pl.col("occupancy_peak_published").is_null()
                          | (pl.col("occupancy_peak_published") != pl.col("occupancy_peak")))
    assert wrong.is_empty(), wrong.select(keys + ["entries", "exits", "occupancy_at_start", "occupancy_peak",
                                                  "occupancy_peak_published"])


@pytest.mark.slow
def test_seat_demand_actuals_are_the_true_peaks(built, library):
    truth, _, marts, _ = built
    holdout = marts["seat_demand_forecast"].filter(pl.col("period") == "holdout").select(
        "branch_code", pl.col("forecast_date").alias("event_date"), "event_hour", "actual_demand")
    assert holdout.height > 0 and holdout["actual_demand"].null_count() == 0
    want = expected.seat_demand(truth, library).filter(pl.col("clean"))
    joined = want.join(holdout, on=["branch_code", "event_date", "event_hour"], how="inner")
    assert joined.height > 20
    wrong = joined.filter(pl.col("actual_demand") != pl.col("demand"))
    assert wrong.is_empty(), wrong


@pytest.mark.slow
def test_the_eresource_top_list_is_the_truths(built):
    truth, _, marts, _ = built
    columns = ["usage_month", "level", "rank", "platform", "name", "total_item_requests",
               "total_item_investigations", "unique_item_requests", "ezproxy_accesses"]
    want = expected.eresource_top(truth).select(columns).sort(columns[:3])
    got = (marts["eresource_top_monthly"].filter(pl.col("level").is_in(expected.COUNTER_LEVELS))
           .select(columns).sort(columns[:3]))
    assert set(want["level"]) == set(expected.COUNTER_LEVELS)
    assert got.rows() == want.rows()
