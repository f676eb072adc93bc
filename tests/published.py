"""A small warehouse built once per test session and published per role, for the access tests."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from assets.feeds import FEEDS
from generator import generate
from pipelines.definitions import build_definitions
from pipelines.runner import plan, run_stage
from warehouse.access import publish
from warehouse.settings import Settings

_BUILT: dict[str, Settings] = {}


def published_home(tmp_path_factory, library) -> Settings:
    """Two tiny days through the whole pipeline, then `publish`; built at most once per session."""
    if "home" not in _BUILT:
        settings = Settings(tmp_path_factory.mktemp("published") / "home").ensure()
        generate(settings.landing, library, scale="tiny", seed=7, start=dt.date(2025, 9, 1), days=2)
        defs = build_definitions(settings, library)
        instance = dg.DagsterInstance.ephemeral()
        failed = [r.error for r in (run_stage(defs, instance, s) for s in plan(settings, None, None, list(FEEDS)))
                  if not r.success]
        assert not failed, failed
        publish(settings)
        _BUILT["home"] = settings
    return _BUILT["home"]
