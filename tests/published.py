"""Warehouses built by a real pipeline run on a generated library: one small home published
per role for the access tests (built once per session), and `pipeline_home` for any test that
needs a whole lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from assets.feeds import FEEDS
from generator import generate
from pipelines.definitions import build_definitions
from pipelines.runner import plan, run_stage
from warehouse.access import publish
from warehouse.settings import Settings

_BUILT: dict[str, Settings] = {}


def run_every_stage(settings: Settings, library) -> None:
    """Every stage `shuku run` makes, over every day of the home's landing files, in an ephemeral instance."""
    defs = build_definitions(settings, library)
    instance = dg.DagsterInstance.ephemeral()
    failed = [r.error for r in (run_stage(defs, instance, s) for s in plan(settings, None, None, list(FEEDS)))
              if not r.success]
    assert not failed, failed


def pipeline_home(home: Path, library, start: dt.date, days: int, seed: int = 7) -> Settings:
    """Generate a tiny library's ``days`` from ``start`` into ``home`` and run every stage on it."""
    settings = Settings(home).ensure()
    generate(settings.landing, library, scale="tiny", seed=seed, start=start, days=days)
    run_every_stage(settings, library)
    return settings


def published_home(tmp_path_factory, library) -> Settings:
    """Two tiny days through the whole pipeline, then `publish`; built at most once per session."""
    if "home" not in _BUILT:
        settings = pipeline_home(tmp_path_factory.mktemp("published") / "home", library, dt.date(2025, 9, 1), 2)
        publish(settings)
        _BUILT["home"] = settings
    return _BUILT["home"]
