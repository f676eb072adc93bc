"""`shuku serve`: a read-only HTTP interface for the university's other systems (Starlette).

  GET  /api/v1/datasets                          the datasets the caller's role may see, with freshness
  GET  /api/v1/datasets/{layer}/{table}          one dataset and its ODCS contract
  GET  /api/v1/datasets/{layer}/{table}/rows     a page of rows (JSON, CSV, Parquet, Arrow), filtered by date
  POST /api/v1/query                             SQL through the guard, as `shuku sql --role`
  GET  /api/v1/trace/{layer.table.column}        the trace of a column, as `shuku trace --format json`
  GET  /openapi.json, /healthz                   the description (generated from the contracts), liveness

Callers send ``Authorization: Bearer <token>`` (``shuku token create``); the token's role decides
everything. Rows and queries run through ``warehouse.guarded.run_guarded`` on the role's published
database, so the refusals and the access log are those of ``shuku sql --role``; every other
request (a listing, a trace, a refusal before the guard: no token, over the rate) is logged
there too, with the request line as its text. Errors are JSON: ``{"error", "message", ...}``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
import socket
import threading
import time
from typing import Iterator
from urllib.parse import urlencode

import uvicorn
from sqlglot import exp
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lineage.store import load_events
from lineage.trace import TraceError, trace as walk
from pipelines.api_callers import ApiLimits, RateLimiter, Tokens
from pipelines.api_screen import RefusalTally, credential_in_query, error_response, limited_body, logged_line
from pipelines.api_http import ApiError, choice_param, date_param, int_param, json_response, only_params, plain, tabular
from pipelines.openapi import MEDIA_TYPES, filter_column, openapi_document
from quality.freshness import is_stale, library_today
from schemas.model import Contract, load_contracts
from schemas.roles import can_see, role_named, visible_columns
from warehouse.access import role_database
from warehouse.guard import DIALECT, GuardDecision
from warehouse.guarded import QueryFailed, QueryLimits, QueryRefused, log_access, open_role_database, run_guarded
from warehouse.settings import Settings
from warehouse.tokens import ApiToken

ANONYMOUS = "anonymous"
FORBIDDEN_CODES = ("clearance", "layer", "operation")
PARTITION = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


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
        self.refusals = RefusalTally(self.limits.refusal_window_s)
        self.freshness: dict[tuple[str, str], tuple[float, dict]] = {}
        self.lineage_lock = threading.Lock()
        self.lineage_stamp = None
        self.document = openapi_document(self.contracts, self.limits)

    # --- requests ------------------------------------------------------------------------
    def screen(self, request: Request, anyone: bool = False) -> None:
        """Refuse a credential in the URL; for what ``anyone`` may ask (liveness, the description, an
        unknown path), a rate per client address, so that nobody floods the access log with them."""
        name = credential_in_query(request.url.query)
        if name:
            raise ApiError(400, "credential_in_url", f"query parameter {name!r} carries a credential: send tokens "
                           "only as `Authorization: Bearer shuku_…`; revoke a token sent this way (`shuku token "
                           "revoke ID`), proxies may have logged it.", tally="credential_in_url")
        if anyone:
            wait = self.rates.take(f"client:{request.client.host if request.client else '-'}")
            if wait:
                raise ApiError(429, "rate_limited", f"too many requests; retry after {math.ceil(wait)} s.",
                               headers={"Retry-After": str(math.ceil(wait))}, tally="rate_limited")

    def caller(self, request: Request) -> ApiToken:
        self.screen(request)
        header = request.headers.get("authorization", "")
        scheme, _, text = header.partition(" ")
        token = self.tokens.find(text.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            # Callers without a valid token share one bucket, so a flood of them cannot flood the access log.
            wait = self.rates.take(ANONYMOUS)
            if wait:
                raise ApiError(429, "rate_limited", f"too many requests without a valid token; retry after "
                               f"{math.ceil(wait)} s.", headers={"Retry-After": str(math.ceil(wait))},
                               tally="rate_limited")
            why = "no Authorization header" if not header else "the token is malformed, unknown or revoked"
            raise ApiError(401, "unauthorized", f"{why}: send `Authorization: Bearer shuku_…` with a token from "
                           "`shuku token create --role ROLE --name SYSTEM`.", headers={"WWW-Authenticate": "Bearer"},
                           tally="unauthorized")
        wait = self.rates.take(token.token_id)
        if wait:
            raise ApiError(429, "rate_limited", f"over the limit of {self.limits.rate_per_s:g} requests per second "
                           f"(bursts of {self.limits.burst}) for this token; retry after {math.ceil(wait)} s.",
                           headers={"Retry-After": str(math.ceil(wait))}, token=token)
        return token

    def log(self, request: Request, token: ApiToken | None, outcome: str, reason: str,
            objects: tuple[str, ...] = (), rows: int | None = None) -> None:
        line = logged_line(request.method, request.url.path, request.url.query)
        log_access(self.settings, role=token.role if token else ANONYMOUS, user=_user(token), sql=line,
                   decision=GuardDecision(outcome == "allowed", reason, objects), outcome=outcome,
                   rows_returned=rows, reason=reason)

    def tally(self, request: Request, kind: str, message: str) -> None:
        """Count a refusal nobody is accountable for; log the count at the first of a window."""
        count = self.refusals.add(kind)
        if count:
            self.log_refusals(kind, count, f"the latest: {logged_line(request.method, request.url.path, request.url.query)}"
                              f": {message}")

    def log_refusals(self, kind: str, count: int, latest: str = "") -> None:
        log_access(self.settings, role=ANONYMOUS, user="-", sql=f"refused requests: {kind}",
                   decision=GuardDecision(False, kind), outcome="refused", rows_returned=None,
                   reason=f"{count} request(s) refused ({kind}) since the last such entry" + (f"; {latest}" if latest else "."))

    def flush_refusals(self) -> None:
        """Log the refusals counted but not yet logged (when the server stops)."""
        for kind, count in self.refusals.pending().items():
            self.log_refusals(kind, count)

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
                 "rows": count, "newest": plain(newest), "stale": stale, "freshness_days": contract.freshness_days}
        self.freshness[key] = (stamp, value)
        return value

    def load_lineage(self) -> None:
        """Rebuild meta.lineage_* from the events file when it changed since the last trace."""
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
    only_params(request)
    shown = [api.describe(token, c) for _, c in sorted(api.contracts.items()) if visible_columns(token.role, c)]
    api.log(request, token, "allowed", f"listed {len(shown)} dataset(s) for role {token.role}.", rows=len(shown))
    return json_response({"role": token.role, "datasets": shown})


def dataset(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    token = api.caller(request)
    contract = api.dataset(token, request.path_params["layer"], request.path_params["table"])
    only_params(request)
    body = api.describe(token, contract)
    body["contract"] = contract.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    api.log(request, token, "allowed", f"described dataset {contract.qualified_name}.", (contract.qualified_name,))
    return json_response(body)


def rows(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    token = api.caller(request)
    contract = api.dataset(token, request.path_params["layer"], request.path_params["table"])
    column = filter_column(contract)
    only_params(request, "format", "limit", "offset", *((f"{column}_from", f"{column}_to") if column else ()))
    fmt = choice_param(request, "format", tuple(MEDIA_TYPES), "json")
    limit = int_param(request, "limit", api.limits.page_size, 1, api.limits.max_page_size)
    offset = int_param(request, "offset", 0, 0, 1_000_000_000)
    start = date_param(request, f"{column}_from") if column else None
    end = date_param(request, f"{column}_to") if column else None
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
    return tabular(fmt, result.columns, result.rows, contract.polars_schema(), page)


async def query(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    token = api.caller(request)
    only_params(request)
    raw = await limited_body(request, api.limits.max_body_bytes)
    if raw is None:
        raise ApiError(413, "body_too_large", f"the request body is over {api.limits.max_body_bytes:,} bytes; "
                       'send {"sql": "SELECT …"} alone.')
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("sql"), str) or not body["sql"].strip():
        raise ApiError(422, "bad_request", 'send a JSON object {"sql": "SELECT …"} (optionally "format": '
                       f'one of {", ".join(MEDIA_TYPES)}).')
    fmt = body.get("format", "json")
    if not isinstance(fmt, str) or fmt not in MEDIA_TYPES:
        raise ApiError(422, "bad_parameter", f"format {fmt!r}: expected one of {', '.join(MEDIA_TYPES)}.",
                       parameter="format")
    result = await run_in_threadpool(_guarded, api, request, token, body["sql"])
    repeated = sorted({c for c in result.columns if result.columns.count(c) > 1})
    if repeated and fmt != "csv":
        raise ApiError(422, "duplicate_column", f"the result has more than one column named {repeated[0]!r}; give "
                       f"each its own alias (AS …), or ask for format csv.", column=repeated[0])
    payload = {"columns": result.columns, "count": len(result.rows), "sql": result.decision.normalised}
    return tabular(fmt, result.columns, result.rows, None, payload)


def trace(request: Request) -> Response:
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
    only_params(request, "partition", "downstream")
    downstream = choice_param(request, "downstream", ("true", "false"), "false") == "true"
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
    return json_response(json.loads(json.dumps(result, default=str)))


def openapi(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    api.screen(request, anyone=True)
    api.log(request, None, "allowed", "the OpenAPI description (no data).")
    return json_response(api.document)


def healthz(request: Request) -> Response:
    api: ShukuApi = request.app.state.api
    api.screen(request, anyone=True)
    api.log(request, None, "allowed", "liveness (no data).")
    return json_response({"status": "ok"})


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette):
    yield
    app.state.api.flush_refusals()


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
    api = ShukuApi(settings, limits)
    app = Starlette(routes=routes, exception_handlers={ApiError: error_response, HTTPException: error_response},
                    lifespan=_lifespan)
    app.state.api = api
    app.state.root_path = root_path
    return app


@contextlib.contextmanager
def running(app: Starlette, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread (tests, benchmarks); yields its base URL."""
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
