"""Rows repeating an earlier row: the fast hash-first search agrees with comparing every column."""

import random

import polars as pl

from assets.repeats import repeated_rows


def _by_definition(frame: pl.DataFrame, columns: list[str]) -> list[bool]:
    seen, out = set(), []
    for row in frame.select(columns).iter_rows():
        out.append(row in seen)
        seen.add(row)
    return out


def test_repeats_agree_with_every_column_compared():
    rng = random.Random(7)
    frame = pl.DataFrame({
        "a": [rng.choice(["x", "y", None]) for _ in range(3000)],
        "b": [rng.choice(["x", "y", None]) for _ in range(3000)],
        "n": [rng.choice([1, 2, None]) for _ in range(3000)],
        "line": list(range(3000)),
    })
    columns = ["a", "b", "n"]
    found = repeated_rows(frame, columns)
    assert found.to_list() == _by_definition(frame, columns)
    assert found.sum() > 2900                       # almost all repeat: 27 distinct rows


def test_values_swapped_between_columns_are_not_repeats():
    frame = pl.DataFrame({"a": ["x", "y", "x"], "b": ["y", "x", "y"]})
    assert repeated_rows(frame, ["a", "b"]).to_list() == [False, False, True]


def test_nothing_repeats_in_an_empty_frame_or_without_columns():
    assert repeated_rows(pl.DataFrame({"a": []}, schema={"a": pl.Utf8}), ["a"]).len() == 0
    assert repeated_rows(pl.DataFrame({"a": ["x", "x"]}), []).to_list() == [False, False]
