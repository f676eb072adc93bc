"""What every `shuku` command shares: its consoles, its exit codes and the home folder it works on.

Exit codes: 0 success; 1 the command ran but something failed (a run, a check, rejected rows
for `parse`); 2 bad usage or an input that cannot be read at all.

Commands import the heavy modules they use (Dagster, DuckDB, polars) inside their bodies, so
that `shuku --help` and a mistyped command answer at once.
"""

from __future__ import annotations

import os
import sys

import click
from rich.console import Console

from warehouse.library import Library, LibraryConfigError, load_library
from warehouse.settings import Settings

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
out = Console(width=None if sys.stdout.isatty() else 160)
# Reports whose rows carry a sample or a list of commands read better wider when piped.
wide = Console(width=None if sys.stdout.isatty() else 200)


class Failed(click.ClickException):
    """The command ran and something failed: exit code 1."""

    exit_code = 1


class Unusable(click.ClickException):
    """Bad usage or an input that cannot be read at all: exit code 2."""

    exit_code = 2


def prepared_settings() -> Settings:
    """The home folder of a command that writes, created if it is not there yet."""
    from warehouse.lake.files import storage_error

    settings = Settings.from_env()
    try:
        return settings.ensure()
    except OSError as exc:
        raise click.ClickException(str(storage_error(exc, settings.home, "preparing") or exc)) from None


def existing_settings() -> Settings:
    """The home folder of a command that only reads: it must exist, and nothing is created in it
    (a mistyped SHUKU_HOME would otherwise show an empty warehouse as if it were the real one)."""
    settings = Settings.from_env()
    if not settings.exists():
        named = (f"SHUKU_HOME={os.environ['SHUKU_HOME']}" if os.environ.get("SHUKU_HOME")
                 else "the default home folder ./var (SHUKU_HOME is not set)")
        raise Unusable(f"{named}: {settings.home} does not exist; nothing was created. Point SHUKU_HOME at a "
                       "Shuku home folder, or make one with `shuku generate` and `shuku run` (or `shuku demo`).")
    return settings


def checked_library(settings: Settings) -> Library:
    """The home's library config, or a readable failure naming what is wrong in it."""
    try:
        return load_library(settings.library_config)
    except LibraryConfigError as exc:
        raise click.ClickException(str(exc)) from None
