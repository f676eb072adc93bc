"""What every `shuku` command shares: its consoles, its exit codes and the home folder it works on.

Exit codes: 0 success; 1 the command ran but something failed (a run, a check, rejected rows
for `parse`); 2 bad usage or an input that cannot be read at all.

Commands import the heavy modules they use (Dagster, DuckDB, polars) inside their bodies, so
that `shuku --help` and a mistyped command answer at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import sys
import traceback

from pathlib import Path

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


def sized_console(default_width: int = 80) -> Console:
    """Standard output's console for a report laid out to fit: COLUMNS wide when it is set (also
    when piped), else the terminal's width, else (piped, no COLUMNS) ``default_width``."""
    columns = os.environ.get("COLUMNS", "").strip()
    width = int(columns) if columns.isdigit() and int(columns) > 0 else None
    return Console(width=width or (None if sys.stdout.isatty() else default_width))


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


def error_log(settings: Settings) -> Path:
    """Where the tracebacks of failures go, for the developers (users see one line)."""
    return settings.home / "logs" / "errors.log"


def log_traceback(settings: Settings, command: str, exc: BaseException) -> Path | None:
    """Append ``exc``'s traceback to the home's error log, card numbers masked; its path, or None if unwritable."""
    text = "".join(traceback.format_exception(exc))
    try:
        text = re.sub(load_library(settings.library_config).card_number_pattern, "<card number>", text)
    except (LibraryConfigError, OSError, re.error):
        text = re.sub(r"\d{6,}", "<number>", text)
    path = error_log(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC shuku {command}\n{text}\n")
    except OSError:
        return None
    return path


def one_line(message: str, limit: int = 1000) -> str:
    """A message on one line, at most ``limit`` characters (never a whole line of a landing file)."""
    flat = " ".join(str(message).split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def no_traceback(command: str, what: str = "input"):
    """An unexpected exception ends the command in one line (exit 2) naming the traceback's file in the
    home folder; Click's own exits and our messages pass through as they are."""
    def decorate(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 - the point: nothing but one line reaches the user
                settings = Settings.from_env()
                where = log_traceback(settings, command, exc) if settings.home.exists() else None
                logged = f"the traceback is in {where}" if where else "the traceback could not be written"
                raise Unusable(one_line(f"shuku {command} failed on the {what} ({type(exc).__name__}: "
                                        f"{one_line(exc, 200)}); {logged}. Report it with the file.")) from None
        return run
    return decorate


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
