"""The demo's library has seats for its readers: occupancy peaks as a library's do (about half to
nine tenths of a zone's seats at the busiest hour of a term week), not at a few per cent."""

from __future__ import annotations

import datetime as dt

import polars as pl

from generator import generate
from generator.demo_library import scaled_library_text, write_demo_library
from generator.expected import zone_hours
from warehouse.library import load_library
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, Settings

TERM_WEEK = dt.date(2025, 9, 8)      # Monday to Friday of the demo's first full term week


def _peak_share(tmp_path, library) -> float:
    """The highest hourly occupancy of any zone, as a share of its seats, over a small term week."""
    settings = Settings(tmp_path / "home").ensure()
    generate(settings.landing, library, scale="small", seed=42, start=TERM_WEEK, days=5)
    seats = pl.DataFrame({"zone_code": [z.code for z in library.zones], "seats": [z.seats for z in library.zones]})
    hours = zone_hours(settings.home / "truth").join(seats, on="zone_code")
    return hours.select((pl.col("occupancy_peak") / pl.col("seats")).max()).item()


def test_demo_occupancy_peaks_like_a_library(tmp_path, library):
    scaled = tmp_path / "library.yaml"
    scaled.write_text(scaled_library_text(DEFAULT_LIBRARY_CONFIG.read_text(encoding="utf-8"), "small"), encoding="utf-8")
    assert 0.5 <= _peak_share(tmp_path / "demo", load_library(scaled)) <= 1.0
    assert _peak_share(tmp_path / "university", library) < 0.15      # the university's seats, a small library's readers


def test_demo_library_keeps_the_library_and_scales_its_seats(tmp_path, library):
    written = write_demo_library(tmp_path, DEFAULT_LIBRARY_CONFIG, "small")
    demo = load_library(written)
    assert [z.code for z in demo.zones] == [z.code for z in library.zones]
    assert (demo.timezone, demo.terms, demo.holidays) == (library.timezone, library.terms, library.holidays)
    assert 400 <= demo.seat_capacity <= 600 and all(z.seats >= 1 for z in demo.zones)
    written.write_text(written.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert write_demo_library(tmp_path, DEFAULT_LIBRARY_CONFIG, "small") is None      # an edited one is kept
    assert written.read_text(encoding="utf-8").endswith("# edited\n")
    assert library.seat_capacity == 5481                          # the project's own config is left as it is
    assert scaled_library_text("seats: 10\n", "university") == "seats: 10\n"

