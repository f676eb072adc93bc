"""Shared fixtures. Nothing a test writes lands in the working tree: every test gets a
home folder under pytest's tmp_path, and telemetry is off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from warehouse.library import Library, load_library  # noqa: E402
from warehouse.settings import DEFAULT_LIBRARY_CONFIG  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """Every test runs with its own SHUKU_HOME, never the repository's ./var."""
    home = tmp_path / "home"
    monkeypatch.setenv("SHUKU_HOME", str(home))
    monkeypatch.delenv("SHUKU_LIBRARY_CONFIG", raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    return home


@pytest.fixture(scope="session")
def library() -> Library:
    return load_library(DEFAULT_LIBRARY_CONFIG)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
