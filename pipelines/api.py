"""`shuku serve`: a read-only HTTP interface for the university's other systems (Starlette).

  GET  /api/v1/datasets                          the datasets the caller's role may see, with freshness
  GET  /api/v1/datasets/{layer}/{table}          one dataset and its ODCS contract
  GET  /api/v1/datasets/{layer}/{table}/rows     a page of rows (JSON, CSV, Parquet, Arrow), filtered by date
  POST /api/v1/query                             SQL through the guard, as `shuku sql --role`
  GET  /api/v1/trace/{layer.table.column}        the trace of a column, as `shuku trace --format json`
  GET  /openapi.json, /healthz                   the description (generated from the contracts), liveness

Callers send ``Authorization: Bearer <token>`` (``shuku token create``); the token's role decides
everything. Rows and queries run through ``warehouse.guard.run_guarded`` on the role's published
database, so the refusals and the access log are those of ``shuku sql --role``; every other
request (a listing, a trace, a refusal before the guard: no token, over the rate) is logged
there too, with the request line as its text. Errors are JSON: ``{"error", "message", ...}``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlencode

import polars as pl
import sqlglot
from sqlglot import exp
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.openapi import MEDIA_TYPES, filter_column, openapi_document
from schemas.model import Contract, load_contracts
from warehouse.access import role_database
from warehouse.guard import (DIALECT, GuardDecision, QueryFailed, QueryLimits, QueryRefused, log_access,
                             open_role_database, run_guarded)
from schemas.roles import can_see, role_named, visible_columns
from warehouse.settings import Settings
from warehouse.tokens import ApiToken, authenticate, load_tokens, tokens_path

ANONYMOUS = "anonymous"
FORBIDDEN_CODES = ("clearance", "layer", "operation")
PARTITION = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


@dataclass(frozen=True)
class ApiLimits:
    """What one caller may take, so that it cannot starve the others."""

    page_size: int = 1_000           # rows per page when the caller does not say
    max_page_size: int = 10_000
    query_timeout_s: float = 10.0    # then DuckDB is interrupted
    max_query_rows: int = 50_000     # rows one query may return
    rate_per_s: float = 20.0         # requests per second per token (a token bucket) …
    burst: int = 40                  # … with this many at once


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, logged: bool = False, headers=None, **extra):
        super().__init__(message)
        self.status, self.error, self.message, self.logged = status, error, message, logged
        self.headers, self.extra = headers or {}, extra


class RateLimiter:
    """A token bucket per API token, in memory (one server process)."""

    def __init__(self, rate_per_s: float, burst: int):
        self.rate, self.burst = rate_per_s, burst
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go, else the seconds to wait."""
        now = time.monotonic()
        with self.lock:
            level, since = self.buckets.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - since) * self.rate)
            if level < 1:
                self.buckets[key] = (level, now)
                return (1 - level) / self.rate
            self.buckets[key] = (level - 1, now)
            return 0.0


class Tokens:
    """The token file, re-read when it changes (a revocation takes effect at the next request)."""

    def __init__(self, settings: Settings):
        self.settings, self.stamp, self.tokens = settings, None, []
        self.lock = threading.Lock()

    def find(self, text: str) -> ApiToken | None:
        path = tokens_path(self.settings)
        stamp = path.stat().st_mtime_ns if path.exists() else None
        with self.lock:
            if stamp != self.stamp:
                self.tokens, self.stamp = load_tokens(self.settings), stamp
            tokens = self.tokens
        return authenticate(tokens, text)


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _json(data, status: int = 200, headers=None) -> Response:
    body = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _frame(columns: list[str], rows: list[tuple], schema: dict | None = None) -> pl.DataFrame:
    if schema:
        return pl.DataFrame(rows, schema={c: schema[c] for c in columns}, orient="row")
    return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)


def _tabular(fmt: str, columns: list[str], rows: list[tuple], schema: dict | None, payload: dict) -> Response:
    """The result in the asked format: JSON (``payload`` plus the rows as objects), CSV, Parquet or Arrow."""
    if fmt == "json":
        payload["rows"] = [{c: _plain(v) for c, v in zip(columns, row)} for row in rows]
        return _json(payload)
    headers = {"X-Row-Count": str(len(rows))}
    if payload.get("next"):
        headers["Link"] = f'<{payload["next"]}>; rel="next"'
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(columns)
        writer.writerows([[("" if v is None else _plain(v)) for v in row] for row in rows])
        return Response(text.getvalue(), media_type=MEDIA_TYPES["csv"], headers=headers)
    buffer = io.BytesIO()
    frame = _frame(columns, rows, schema)
    if fmt == "parquet":
        frame.write_parquet(buffer, compression="zstd")
    else:
        frame.write_ipc_stream(buffer)
    return Response(buffer.getvalue(), media_type=MEDIA_TYPES[fmt], headers=headers)


def _only(request: Request, *allowed: str) -> None:
    """Refuse query parameters the operation does not take (a misspelt filter would otherwise be ignored)."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise ApiError(422, "bad_parameter", f"unknown query parameter {unknown[0]!r}: this operation takes "
                       f"{', '.join(allowed) or 'none'}.", parameter=unknown[0])


def _date_param(request: Request, name: str) -> dt.date | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "bad_parameter", f"query parameter {name}={text!r}: expected a date, YYYY-MM-DD.",
                       parameter=name) from None


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ApiError(422, "bad_parameter", f"query parameter {name}={text!r}: expected a whole number from "
                       f"{low:,} to {high:,}.", parameter=name)
    return value


def _choice(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in allowed:
        raise ApiError(422, "bad_parameter", f"query parameter {name}={value!r}: expected one of {', '.join(allowed)}.",
                       parameter=name)
    return value


def rows_sql(contract: Contract, columns: list[str], column: str | None, start: dt.date | None,
             end: dt.date | None, limit: int, offset: int) -> str:
    """The page of a dataset as one SELECT the guard checks like any other (values as literals, never text)."""
    query = exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(exp.table_(contract.table, db=contract.layer))
    if column is not None:
        target = exp.column(column, quoted=True)
        if contract.column(column).physical_type == "TIMESTAMP":
            target = exp.cast(target, "DATE")
        if start is not None:
            query = query.where(exp.GTE(this=target.copy(), expression=exp.cast(exp.Literal.string(start.isoformat()), "DATE")))
        if end is not None:
            query = query.where(exp.LTE(this=target.copy(), expression=exp.cast(exp.Literal.string(end.isoformat()), "DATE")))
    order = [c for c in contract.primary_key if c in columns] or columns
    query = query.order_by(*[exp.column(c, quoted=True) for c in order]).limit(limit).offset(offset)
    return query.sql(dialect=DIALECT)


class ShukuApi:
    """The application's state: settings, limits, tokens, rate buckets, caches."""

    def __init__(self, settings: Settings, limits: ApiLimits | None = None):
        self.settings, self.limits = settings, limits or ApiLimits()
        self.contracts = load_contracts()
        self.tokens = Tokens(settings)
        self.rates = RateLimiter(self.limits.rate_per_s, self.limits.burst)
        self.freshness: dict[tuple[str, str], tuple[float, dict]] = {}
        self.lineage_lock = threading.Lock()
        self.lineage_stamp = None
        self.document = openapi_document(self.contracts, self.limits)

    # --- requests ------------------------------------------------------------------------
    def caller(self, request: Request) -> ApiToken:
        header = request.headers.get("authorization", "")
        scheme, _, text = header.partition(" ")
        token = self.tokens.find(text.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            # Callers without a valid token share one bucket, so a flood of them cannot flood the access log.
            wait = self.rates.take(ANONYMOUS)
            if wait:
                raise ApiError(429, "rate_limited", f"too many requests without a valid token; retry after "
                               f"{math.ceil(wait)} s.", headers={"Retry-After": str(math.ceil(wait))})
            why = "no Authorization header" if not header else "the token is malformed, unknown or revoked"
            raise ApiError(401, "unauthorized", f"{why}: send `Authorization: Bearer shuku_…` with a token from "
                           "`shuku token create --role ROLE --name SYSTEM`.", headers={"WWW-Authenticate": "Bearer"})
        wait = self.rates.take(token.token_id)
        if wait:
            raise ApiError(429, "rate_limited", f"over the limit of {self.limits.rate_per_s:g} requests per second "
                           f"(bursts of {self.limits.burst}) for this token; retry after {math.ceil(wait)} s.",
                           headers={"Retry-After": str(math.ceil(wait))}, token=token)
        return token

    def log(self, request: Request, token: ApiToken | None, outcome: str, reason: str,
            objects: tuple[str, ...] = (), rows: int | None = None) -> None:
        line = f"{request.method} {request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
        log_access(self.settings, role=token.role if token else ANONYMOUS, user=_user(token), sql=line,
                   decision=GuardDecision(outcome == "allowed", reason, objects), outcome=outcome,
                   rows_returned=rows, reason=reason)

    def dataset(self, token: ApiToken, layer: str, table: str) -> Contract:
        name = f"{layer}.{table}"
        contract = self.contracts.get(name)
        if contract is None:
            raise ApiError(404, "unknown_dataset", f"there is no dataset {name}; GET /api/v1/datasets lists yours.",
                           dataset=name)
        role = role_named(token.role)
        if not visible_columns(role, contract):
            raise ApiError(403, "forbidden", f"dataset {name} is in layer {layer}, which role {role.name} may not "
                           f"read (its layers: {', '.join(role.layers)}).", dataset=name, refused=[name])
        return contract

    def describe(self, token: ApiToken, contract: Contract) -> dict:
        columns = visible_columns(token.role, contract)
        column = filter_column(contract)
        return {
            "name": contract.qualified_name, "layer": contract.layer, "table": contract.table,
            "description": contract.description, "owner": contract.owner, "partitioning": contract.partitioning,
            "filter_column": column if column and can_see(token.role, contract, contract.column(column)) else None,
            "columns": [{"name": c.name, "type": c.physical_type, "classification": c.classification,
                         "required": c.required, "description": c.description} for c in columns],
            "freshness": self.freshness_of(token.role, contract),
            "rows_url": f"/api/v1/datasets/{contract.layer}/{contract.table}/rows",
        }

    def freshness_of(self, role: str, contract: Contract) -> dict:
        """Rows, newest day and staleness in the role's published database, cached until it is republished."""
        from quality.freshness import is_stale, library_today

        path = role_database(self.settings, role)
        if not path.exists():
            return {"published_at": None, "rows": None, "newest": None, "stale": None,
                    "freshness_days": contract.freshness_days}
        stamp = path.stat().st_mtime
        key = (role, contract.qualified_name)
        cached = self.freshness.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
        column = filter_column(contract)
        visible = column if column and can_see(role, contract, contract.column(column)) else None
        con = open_role_database(self.settings, role)
        try:
            count, newest = con.execute(f'SELECT count(*), {f"max({visible})" if visible else "NULL"} '
                                        f"FROM {contract.qualified_name}").fetchone()
        finally:
            con.close()
        stale = None
        if newest is not None and contract.freshness_days is not None:
            stale = is_stale(contract, newest, library_today(self.settings))
        value = {"published_at": dt.datetime.fromtimestamp(stamp, dt.timezone.utc).replace(microsecond=0).isoformat(),
                 "rows": count, "newest": _plain(newest), "stale": stale, "freshness_days": contract.freshness_days}
        self.freshness[key] = (stamp, value)
        return value

    def load_lineage(self) -> None:
        """Rebuild meta.lineage_* from the events file when it changed since the last trace."""
        from lineage.store import load_events

        events = self.settings.lineage_dir / "events.jsonl"
        stamp = events.stat().st_mtime_ns if events.exists() else None
        with self.lineage_lock:
            if stamp != self.lineage_stamp:
                load_events(self.settings, refresh_views=False)
                self.lineage_stamp = stamp


def _user(token: ApiToken | None) -> str:
    return f"api:{token.name}:{token.token_id}" if token else "-"


def _guarded(api: ShukuApi, request: Request, token: ApiToken, sql: str):
    limits = QueryLimits(timeout_s=api.limits.query_timeout_s, max_rows=api.limits.max_query_rows)
    try:
        return run_guarded(api.settings, sql, token.role, _user(token), limits)
    except QueryRefused as exc:
        decision = exc.decision
        if decision.code in FORBIDDEN_CODES:
            raise ApiError(403, "forbidden", f"refused for role {token.role}: {decision.reason}", logged=True,
                           refused=list(decision.refused)) from None
        raise ApiError(422, "bad_query", f"refused for role {token.role}: {decision.reason}", logged=True) from None
    except QueryFailed as exc:
        error = {"timeout": "query_timeout", "too_large": "result_too_large"}.get(exc.kind, "query_failed")
        raise ApiError(422, error, str(exc), logged=True) from None


# --- endpoints -----------------------------------------------------------------------------
def datasets(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    token = api.caller(request)
    _only(request)
    shown = [api.describe(token, c) for _, c in sorted(api.contracts.items()) if visible_columns(token.role, c)]
    api.log(request, token, "allowed", f"listed {len(shown)} dataset(s) for role {token.role}.", rows=len(shown))
    return _json({"role": token.role, "datasets": shown})


def dataset(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    token = api.caller(request)
    contract = api.dataset(token, request.path_params["layer"], request.path_params["table"])
    _only(request)
    body = api.describe(token, contract)
    body["contract"] = contract.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    api.log(request, token, "allowed", f"described dataset {contract.qualified_name}.", (contract.qualified_name,))
    return _json(body)


def rows(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    token = api.caller(request)
    contract = api.dataset(token, request.path_params["layer"], request.path_params["table"])
    column = filter_column(contract)
    _only(request, "format", "limit", "offset", *((f"{column}_from", f"{column}_to") if column else ()))
    fmt = _choice(request, "format", tuple(MEDIA_TYPES), "json")
    limit = _int_param(request, "limit", api.limits.page_size, 1, api.limits.max_page_size)
    offset = _int_param(request, "offset", 0, 0, 1_000_000_000)
    start = _date_param(request, f"{column}_from") if column else None
    end = _date_param(request, f"{column}_to") if column else None
    if start and end and start > end:
        raise ApiError(422, "bad_parameter", f"{column}_from {start} is after {column}_to {end}.",
                       parameter=f"{column}_from")
    columns = [c.name for c in visible_columns(token.role, contract)]
    filtered = column if (start or end) else None
    sql = rows_sql(contract, columns, filtered, start, end, limit, offset)
    result = _guarded(api, request, token, sql)
    page = {"dataset": contract.qualified_name, "limit": limit, "offset": offset, "count": len(result.rows),
            "next": None}
    if len(result.rows) == limit:
        params = dict(request.query_params) | {"offset": str(offset + limit), "limit": str(limit)}
        page["next"] = f"{request.scope.get('root_path', '')}{request.url.path}?{urlencode(params)}"
    return _tabular(fmt, result.columns, result.rows, contract.polars_schema(), page)


async def query(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    token = api.caller(request)
    _only(request)
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("sql"), str) or not body["sql"].strip():
        raise ApiError(422, "bad_request", 'send a JSON object {"sql": "SELECT …"} (optionally "format": '
                       f'one of {", ".join(MEDIA_TYPES)}).')
    fmt = body.get("format", "json")
    if not isinstance(fmt, str) or fmt not in MEDIA_TYPES:
        raise ApiError(422, "bad_parameter", f"format {fmt!r}: expected one of {', '.join(MEDIA_TYPES)}.",
                       parameter="format")
    from starlette.concurrency import run_in_threadpool

    result = await run_in_threadpool(_guarded, api, request, token, body["sql"])
    payload = {"columns": result.columns, "count": len(result.rows), "sql": result.decision.normalised}
    return _tabular(fmt, result.columns, result.rows, None, payload)


def trace(request: Request) -> Response:
    from lineage.trace import TraceError, trace as walk

    api: ShukuApi = request.app.state.api
    token = api.caller(request)
    target = request.path_params["target"]
    role = role_named(token.role)
    if "meta" not in role.layers:
        raise ApiError(403, "forbidden", f"a trace reads the lineage in meta.lineage_*, in layer meta, which role "
                       f"{role.name} may not read; ask for an auditor's token.", refused=["meta.lineage_runs"])
    parts = target.split(".")
    contract = api.contracts.get(".".join(parts[:2])) if len(parts) == 3 else None
    if contract is not None and parts[2] in contract.column_names:
        column = contract.column(parts[2])
        if not can_see(role, contract, column):
            raise ApiError(403, "forbidden", f"column {target} is {column.classification}, above role {role.name}'s "
                           f"clearance ({role.clearance}), or in a layer it may not read.", refused=[target])
    _only(request, "partition", "downstream")
    downstream = _choice(request, "downstream", ("true", "false"), "false") == "true"
    partition = request.query_params.get("partition")
    if partition is not None and not PARTITION.match(partition):
        raise ApiError(422, "bad_parameter", f"query parameter partition={partition!r}: expected a day (YYYY-MM-DD) "
                       "or a month (YYYY-MM).", parameter="partition")
    api.load_lineage()
    try:
        result = walk(api.settings, target, partition=partition, downstream=downstream)
    except TraceError as exc:
        raise ApiError(422, "bad_target", str(exc)) from None
    api.log(request, token, "allowed", f"traced {target}.", (target,), rows=len(result["hops"]))
    return _json(json.loads(json.dumps(result, default=str)))


def openapi(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    api.log(request, None, "allowed", "the OpenAPI description (no data).")
    return _json(api.document)


def healthz(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    api.log(request, None, "allowed", "liveness (no data).")
    return _json({"status": "ok"})


def _error(request: Request, exc: Exception) -> Response:
    api: ShukuApi = request.app.state.api
    if isinstance(exc, ApiError):
        status, error, message, headers, extra = exc.status, exc.error, exc.message, exc.headers, dict(exc.extra)
        token = extra.pop("token", None)
        logged = exc.logged
    else:
        status = exc.status_code
        error = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        message = (f"no such endpoint: {request.method} {request.url.path}; GET /openapi.json describes them."
                   if status in (404, 405) else str(exc.detail))
        headers, extra, token, logged = getattr(exc, "headers", None) or {}, {}, None, False
    if not logged:
        if token is None and status not in (401,):
            try:
                token = api.tokens.find(request.headers.get("authorization", "").partition(" ")[2].strip())
            except Exception:    # a broken token file is reported by the request itself
                token = None
        api.log(request, token, "refused", message)
    return _json({"error": error, "message": message, **extra}, status=status, headers=headers)


def create_app(settings: Settings, limits: ApiLimits | None = None, root_path: str = "") -> Starlette:
    """The ASGI application for ``settings``' home folder."""
    routes = [
        Route("/api/v1/datasets", datasets, methods=["GET"]),
        Route("/api/v1/datasets/{layer}/{table}", dataset, methods=["GET"]),
        Route("/api/v1/datasets/{layer}/{table}/rows", rows, methods=["GET"]),
        Route("/api/v1/query", query, methods=["POST"]),
        Route("/api/v1/trace/{target}", trace, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={ApiError: _error, HTTPException: _error})
    app.state.api = ShukuApi(settings, limits)
    app.state.root_path = root_path
    return app


@contextlib.contextmanager
def running(app: Starlette, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread (tests, benchmarks); yields its base URL."""
    import socket

    import uvicorn

    if port is None:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, name="shuku-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the API did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
