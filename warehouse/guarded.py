"""Running a query as a role: the guard decides (`warehouse.guard`), every decision is logged in
meta.access_log, and what is allowed runs on the role's published database within its limits."""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import duckdb
import polars as pl

from schemas.model import load_contracts
from schemas.roles import role_named
from warehouse.access import role_database
from warehouse.audit import append_chained
from warehouse.grants import Account, AccessConfigError, RoleNotGranted, current_account, require_role
from warehouse.guard import GuardDecision, guard
from warehouse.lake.paths import log_file
from warehouse.library import load_library
from warehouse.catalog_sql import CATALOG_LAYER, CATALOG_TABLES, catalog_rows
from warehouse.live_log import pointed_at, with_live_log
from warehouse.log_redaction import logged_digest, redact_logged
from warehouse.settings import Settings

ACCESS_LOG = "meta.access_log"


@dataclass
class GuardedResult:
    decision: GuardDecision
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)


class QueryRefused(PermissionError):
    """The guard refused a query; ``decision.reason`` says which table, column or rule."""

    def __init__(self, decision: GuardDecision):
        super().__init__(decision.reason)
        self.decision = decision


class QueryFailed(RuntimeError):
    """The guard allowed a query and DuckDB then failed to run it (``kind`` "error"), or a limit
    stopped it: "timeout" (interrupted after ``QueryLimits.timeout_s``), "too_large" (more rows
    than ``QueryLimits.max_rows``)."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class QueryLimits:
    """Caps for callers sharing one server (the HTTP interface); the CLI runs without them."""

    timeout_s: float | None = None
    max_rows: int | None = None


def _card_regex(config: Path) -> re.Pattern[str]:
    """The library's card-number pattern, read again only when its config file changes (one parse per
    logged query cost more than the query itself through the HTTP interface)."""
    return _card_regex_of(config, config.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _card_regex_of(config: Path, mtime_ns: int) -> re.Pattern[str]:
    return load_library(config).card_regex()


def log_access(settings: Settings, *, role: str, user: str, sql: str, decision: GuardDecision,
               outcome: str, rows_returned: int | None, reason: str | None = None) -> None:
    """Append one row to meta.access_log: a new Parquet file per query, written atomically."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    # A card number or pseudonym typed into a query must not land in the log (warehouse.log_redaction).
    # Text that is not valid UTF-8 (a lone surrogate) is logged with it escaped, never dropped.
    sql = sql.encode("utf-8", "backslashreplace").decode("utf-8")
    card = _card_regex(settings.library_config)
    logged_text = redact_logged(sql, card)
    frame = pl.DataFrame({
        "logged_at": [now], "role": [role], "user_name": [user],
        "sql_sha256": [logged_digest(logged_text)], "sql_text": [logged_text],
        "objects": [list(decision.objects)], "outcome": [outcome], "reason": [redact_logged(reason or decision.reason, card)],
        "rows_returned": [rows_returned],
    }, schema_overrides={"objects": pl.List(pl.Utf8), "rows_returned": pl.Int64})
    append_chained(settings, ACCESS_LOG, frame, log_file(settings, ACCESS_LOG, now))


def open_role_database(settings: Settings, role: str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the role's published database, external access off, settings locked."""
    path = role_database(settings, role)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no published database for role {role}; run `shuku publish` first.")
    # Set at connect, not with SET: threads of one process share the open database, and a second
    # SET on a locked configuration fails.
    return duckdb.connect(str(path), read_only=True,
                          config={"enable_external_access": False, "lock_configuration": True})


def with_catalog(con: duckdb.DuckDBPyConnection, sql: str, role: str, decision: GuardDecision) -> str:
    """``sql`` with its ``information_schema`` tables pointed at the role's own catalog rows
    (registered on ``con``), never at DuckDB's catalog."""
    rows = None
    for table, (_, columns) in CATALOG_TABLES.items():
        if f"{CATALOG_LAYER}.{table}" not in decision.objects:
            continue
        rows = rows or catalog_rows(role_named(role), load_contracts())
        target = f"shuku_catalog_{table}"
        sql = pointed_at(sql, f"{CATALOG_LAYER}.{table}", target) or sql
        schema = {name: pl.Int32 if kind == "INTEGER" else pl.Utf8 for name, kind, _ in columns}
        con.register(target, pl.DataFrame(rows[table], schema=schema, orient="row").to_arrow())
    return sql


def run_guarded(settings: Settings, sql: str, role: str, user: str | None = None,
                limits: QueryLimits | None = None, account: Account | None = None) -> GuardedResult:
    """Guard ``sql`` for ``role``, log the decision, and run it if allowed, within ``limits``.

    ``user``: the caller as logged, for a caller authenticated otherwise (an API token). Without
    it the caller is a local ``account`` (the process's real one unless given), which must hold
    the role in the home's access configuration (`warehouse.grants`).
    Raises QueryRefused (logged as refused) or QueryFailed (logged as failed).
    """
    role_named(role)
    if user is None:
        account = account or current_account()
        user = account.name
        try:
            require_role(settings, role, account)
        except (RoleNotGranted, AccessConfigError) as exc:
            refusal = GuardDecision(False, str(exc), code="grant")
            log_access(settings, role=role, user=user, sql=sql, decision=refusal, outcome="refused", rows_returned=None)
            raise QueryRefused(refusal) from None
    decision = guard(sql, role, user)
    if not decision.allowed:
        log_access(settings, role=role, user=user, sql=sql, decision=decision, outcome="refused", rows_returned=None)
        raise QueryRefused(decision)
    limits = limits or QueryLimits()
    try:
        con = open_role_database(settings, role)
        timer = threading.Timer(limits.timeout_s, con.interrupt) if limits.timeout_s else None
        try:
            if timer:
                timer.start()
            cursor = con.execute(with_catalog(con, with_live_log(con, settings, role, decision, ACCESS_LOG), role, decision))
            columns = [d[0] for d in cursor.description] if cursor.description else []
            if not columns:
                rows = []
            elif limits.max_rows is None:
                rows = cursor.fetchall()
            else:
                rows = cursor.fetchmany(limits.max_rows + 1)
        finally:
            if timer:
                timer.cancel()
            con.close()
    except (duckdb.Error, FileNotFoundError) as exc:
        kind, message = "error", f"query failed: {exc}"
        if isinstance(exc, duckdb.InterruptException):
            kind, message = "timeout", (f"query stopped after the {limits.timeout_s:g} s time limit; "
                                        "filter on a partition column, aggregate, or add a LIMIT.")
        log_access(settings, role=role, user=user, sql=sql, decision=decision, outcome="failed",
                   rows_returned=None, reason=message)
        raise QueryFailed(message, kind) from None
    if limits.max_rows is not None and len(rows) > limits.max_rows:
        message = (f"the result has more than {limits.max_rows:,} rows, the limit per query; "
                   "add a LIMIT (and OFFSET to page), or aggregate.")
        log_access(settings, role=role, user=user, sql=sql, decision=decision, outcome="failed",
                   rows_returned=None, reason=message)
        raise QueryFailed(message, "too_large")
    log_access(settings, role=role, user=user, sql=sql, decision=decision, outcome="allowed", rows_returned=len(rows))
    return GuardedResult(decision, columns, rows)
