"""Warehouses built by a real pipeline run on a generated library.

`shared_home` is the session's tiny home: two generated days through every stage, then
`publish`, built at most once per session and shared by every test that reads a whole lake
(`published_home` gives its settings). `week_home` is the session's tiny nine days across a
month end, for what needs a longer history (every mart filled, every kind of damaged line).
Tests read them as they are; a test that writes copies one first (`copied_home`).
`pipeline_home` builds a home of its own, for a test that needs other days or a seed of its own.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from assets.feeds import FEEDS
from generator import generate
from generator.report import GenerationReport
from pipelines.definitions import build_definitions
from pipelines.runner import StageResult, plan, run_stage
from warehouse.access import publish
from warehouse.settings import Settings

SHARED_START, SHARED_DAYS, SHARED_SEED = dt.date(2025, 9, 1), 2, 7
WEEK_START, WEEK_DAYS = dt.date(2025, 10, 25), 9


@dataclass(frozen=True)
class BuiltHome:
    """A home after a pipeline run: what was generated into it, and the run's instance and stages."""

    settings: Settings
    report: GenerationReport
    instance: dg.DagsterInstance
    results: list[StageResult]


_BUILT: dict[str, BuiltHome] = {}


def run_every_stage(settings: Settings, library, instance: dg.DagsterInstance | None = None) -> list[StageResult]:
    """Every stage `shuku run` makes, over every day of the home's landing files (in an ephemeral
    instance unless one is given); fails the test when a stage fails."""
    defs = build_definitions(settings, library)
    instance = instance or dg.DagsterInstance.ephemeral()
    results = [run_stage(defs, instance, s) for s in plan(settings, None, None, list(FEEDS))]
    failed = [r.error for r in results if not r.success]
    assert not failed, failed
    return results


def built_home(home: Path, library, start: dt.date, days: int, seed: int = SHARED_SEED) -> BuiltHome:
    """Generate a tiny library's ``days`` from ``start`` into ``home`` and run every stage on it."""
    settings = Settings(home).ensure()
    report = generate(settings.landing, library, scale="tiny", seed=seed, start=start, days=days)
    instance = dg.DagsterInstance.ephemeral()
    return BuiltHome(settings, report, instance, run_every_stage(settings, library, instance))


def pipeline_home(home: Path, library, start: dt.date, days: int, seed: int = SHARED_SEED) -> Settings:
    return built_home(home, library, start, days, seed).settings


def shared_home(tmp_path_factory, library) -> BuiltHome:
    """The session's tiny home (two days from 2025-09-01, seed 7), published; built at most once."""
    if "shared" not in _BUILT:
        built = built_home(tmp_path_factory.mktemp("published") / "home", library, SHARED_START, SHARED_DAYS)
        publish(built.settings)
        _BUILT["shared"] = built
    return _BUILT["shared"]


def week_home(tmp_path_factory, library) -> BuiltHome:
    """The session's nine tiny days from 2025-10-25 (across a month end, seed 7); built at most once."""
    if "week" not in _BUILT:
        _BUILT["week"] = built_home(tmp_path_factory.mktemp("week") / "home", library, WEEK_START, WEEK_DAYS)
    return _BUILT["week"]


def published_home(tmp_path_factory, library) -> Settings:
    return shared_home(tmp_path_factory, library).settings


def copied_home(source: Settings, home: Path) -> Settings:
    """A copy of ``source`` at ``home``, for a test that writes (a home is relocatable: its views
    and logs name paths relative to it)."""
    shutil.copytree(source.home, home)
    return Settings(home).ensure()
