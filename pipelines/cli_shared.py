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

    from warehouse.grants import AccessConfigError, apply_service_group

    settings = Settings.from_env()
    try:
        settings.ensure()
        apply_service_group(settings)
        return settings
    except AccessConfigError as exc:
        raise Unusable(str(exc)) from None
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


def full_view_sql(settings: Settings, query: str) -> tuple[list[str], list[tuple]]:
    """`shuku sql` without --role: every layer unguarded, for an account granted the full view,
    and logged in meta.access_log like a guarded query (role "(full view)"). The account reads the
    lake with its own permissions, so on a read-only home the query runs with a warning, unlogged."""
    import duckdb

    from warehouse.grants import FULL_VIEW, AccessConfigError, RoleNotGranted, current_account, require_full_view
    from warehouse.guard import GuardDecision
    from warehouse.guarded import log_access
    from warehouse.lake.files import StorageError
    from warehouse.lake.views import compute_connection

    account = current_account()

    def log(decision: GuardDecision, outcome: str, rows: int | None = None, reason: str | None = None) -> None:
        try:
            log_access(settings, role=FULL_VIEW, user=account.name, sql=query, decision=decision, outcome=outcome,
                       rows_returned=rows, reason=reason)
        except (StorageError, OSError) as exc:
            err.print(f"[yellow]not written to meta.access_log: {exc}[/yellow]")

    try:
        require_full_view(settings, account)
    except AccessConfigError as exc:
        raise Unusable(str(exc)) from None
    except RoleNotGranted as exc:
        log(GuardDecision(False, str(exc), code="grant"), "refused")
        raise Failed(str(exc)) from None
    decision = GuardDecision(True, "the full view: every layer, unguarded (granted in access.yaml).")
    con = compute_connection(settings)
    try:
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description] if cursor.description else []
        rows = cursor.fetchall() if names else []
    except duckdb.Error as exc:
        log(decision, "failed", reason=f"query failed: {exc}")
        raise click.ClickException(f"query failed: {exc}") from None
    finally:
        con.close()
    log(decision, "allowed", len(rows))
    return names, rows
