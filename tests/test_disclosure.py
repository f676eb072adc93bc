"""Disclosure control: small cells suppressed, secondary suppression so group totals reveal nothing."""

import datetime as dt

import polars as pl
import pytest

from schemas.model import load_contracts
from warehouse.disclosure import suppress

DAY = dt.date(2025, 9, 1)


@pytest.fixture(scope="module")
def contract():
    return load_contracts()["marts.space_utilisation"]


def _hours(zone: str, entries: list[int], day=DAY) -> pl.DataFrame:
    n = len(entries)
    return pl.DataFrame({
        "event_date": [day] * n, "event_hour": list(range(8, 8 + n)), "branch_code": ["MAIN"] * n,
        "zone_code": [zone] * n, "entries": entries, "exits": [10] * n, "occupancy_peak": [50] * n,
        "occupancy_mean": [40.0] * n, "seat_capacity": [100] * n, "utilisation": [0.5] * n,
    })


def test_small_counts_are_suppressed_and_zero_is_not(contract):
    out, report = suppress(_hours("MAIN-READ", [0, 3, 4, 40, 50]), contract)
    assert out["entries"].to_list()[0] == 0
    assert out["entries"].to_list()[1:3] == [None, None]
    assert report.primary == 2 and report.secondary == 0   # two suppressed: the total reveals neither


def test_a_lone_suppressed_cell_takes_the_smallest_other_with_it(contract):
    out, report = suppress(_hours("MAIN-READ", [12, 2, 40, 9, 50]), contract)
    assert out["entries"].to_list() == [12, None, 40, None, 50]
    assert (report.primary, report.secondary) == (1, 1)


def test_groups_are_separate_and_a_group_of_one_needs_no_partner(contract):
    frame = pl.concat([_hours("MAIN-READ", [2, 30, 31]), _hours("EAST-READ", [30, 31, 32]),
                       _hours("MED-READ", [1])])
    out, report = suppress(frame, contract)
    by_zone = {z: out.filter(pl.col("zone_code") == z)["entries"].to_list() for z in ("MAIN-READ", "EAST-READ", "MED-READ")}
    assert by_zone == {"MAIN-READ": [None, None, 31], "EAST-READ": [30, 31, 32], "MED-READ": [None]}
    assert (report.primary, report.secondary) == (2, 1)


def test_ties_pick_one_partner_deterministically(contract):
    out, _ = suppress(_hours("MAIN-READ", [3, 20, 20, 20]), contract)
    assert out["entries"].to_list() == [None, None, 20, 20]


def test_derived_columns_follow_the_counts_they_come_from(contract):
    frame = _hours("MAIN-READ", [30, 30, 30]).with_columns(
        occupancy_peak=pl.Series([2, 60, 70]), utilisation=pl.Series([0.02, 0.6, 0.7]),
        occupancy_mean=pl.Series([1.5, 50.0, 60.0]))
    out, report = suppress(frame, contract)
    assert out["occupancy_peak"].to_list() == [None, None, 70]
    assert out["utilisation"].to_list() == [None, None, 0.7]
    assert out["occupancy_mean"].to_list() == [None, None, 60.0]
    assert report.derived == 4
    assert out["seat_capacity"].to_list() == [100, 100, 100]


def test_no_group_is_left_with_exactly_one_suppressed_cell(contract):
    """Adversarial: many random small counts over many zone-days."""
    import random
    rng = random.Random(5)
    frames = [_hours(f"Z{z}", [rng.choice([0, 1, 2, 3, 4, 5, 6, 50]) for _ in range(12)], DAY + dt.timedelta(days=d))
              for z in range(6) for d in range(5)]
    out, _ = suppress(pl.concat(frames), contract)
    for column in ("entries",):
        lone = (out.group_by("event_date", "zone_code").agg(pl.col(column).is_null().sum().alias("n"))
                .filter(pl.col("n") == 1))
        assert lone.height == 0
        shown = out[column].drop_nulls()
        assert not shown.is_between(1, 4).any()
