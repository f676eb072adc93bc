"""A nightly `shuku run` leaves an unchanged patron or catalogue export alone and loads a changed one."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from assets.feeds import FEEDS, feed_named
from generator import generate
from pipelines.cli import main
from pipelines.runner import plan
from warehouse.settings import Settings

SNAPSHOT_TABLES = {"patron", "bib_record", "item"}


def _snapshot_tables(settings: Settings, **kwargs) -> set[str]:
    return {k.path[-1] for s in plan(settings, None, None, list(FEEDS), models=False, **kwargs) for k in s.assets
            if k.path[-1] in SNAPSHOT_TABLES}


@pytest.mark.slow
def test_unchanged_snapshots_are_not_loaded_again(tmp_path, library, monkeypatch):
    settings = Settings(tmp_path / "home").ensure()
    monkeypatch.setenv("SHUKU_HOME", str(settings.home))
    generate(settings.landing, library, scale="tiny", seed=5, start=dt.date(2025, 9, 1), days=1)
    assert _snapshot_tables(settings) == SNAPSHOT_TABLES           # nothing loaded yet
    first = CliRunner().invoke(main, ["run", "--no-models"])
    assert first.exit_code == 0, first.output
    assert _snapshot_tables(settings) == set()
    assert _snapshot_tables(settings, reload_snapshots=True) == SNAPSHOT_TABLES
    again = CliRunner().invoke(main, ["run", "--no-models"])
    assert again.exit_code == 0 and "the newest export is loaded already" in again.output
    assert "catalogue" in again.output and "patrons" in again.output
    # A changed export (its last reader line gone) is loaded again; the catalogue still is not.
    export = feed_named("patrons").files(settings.landing)[-1]
    lines = export.read_bytes().splitlines(keepends=True)
    export.write_bytes(b"".join(lines[:-1]))
    assert _snapshot_tables(settings) == {"patron"}
    # A missing staging table is loaded again too.
    for part in (settings.lake / "staging" / "item").rglob("*.parquet"):
        part.unlink()
    assert _snapshot_tables(settings) == {"patron", "bib_record", "item"}
