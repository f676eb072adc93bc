"""The HTTP interface's requests and answers: query parameters checked, errors as JSON, results
as JSON, CSV, Parquet or Arrow."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math

import polars as pl
from starlette.requests import Request
from starlette.responses import Response

from pipelines.openapi import MEDIA_TYPES


class ApiError(Exception):
    """A request answered with an error: its status, a code for programs and a message for people."""

    def __init__(self, status: int, error: str, message: str, logged: bool = False, headers=None, **extra):
        super().__init__(message)
        self.status, self.error, self.message, self.logged = status, error, message, logged
        self.headers, self.extra = headers or {}, extra


def plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def json_response(data, status: int = 200, headers=None) -> Response:
    body = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _frame(columns: list[str], rows: list[tuple], schema: dict | None = None) -> pl.DataFrame:
    if schema:
        return pl.DataFrame(rows, schema={c: schema[c] for c in columns}, orient="row")
    return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)


def tabular(fmt: str, columns: list[str], rows: list[tuple], schema: dict | None, payload: dict) -> Response:
    """The result in the asked format: JSON (``payload`` plus the rows as objects), CSV, Parquet or Arrow."""
    if fmt == "json":
        payload["rows"] = [{c: plain(v) for c, v in zip(columns, row)} for row in rows]
        return json_response(payload)
    headers = {"X-Row-Count": str(len(rows))}
    if payload.get("next"):
        headers["Link"] = f'<{payload["next"]}>; rel="next"'
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(columns)
        writer.writerows([[("" if v is None else plain(v)) for v in row] for row in rows])
        return Response(text.getvalue(), media_type=MEDIA_TYPES["csv"], headers=headers)
    buffer = io.BytesIO()
    frame = _frame(columns, rows, schema)
    if fmt == "parquet":
        frame.write_parquet(buffer, compression="zstd")
    else:
        frame.write_ipc_stream(buffer)
    return Response(buffer.getvalue(), media_type=MEDIA_TYPES[fmt], headers=headers)


def only_params(request: Request, *allowed: str) -> None:
    """Refuse query parameters the operation does not take (a misspelt filter would otherwise be ignored)."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise ApiError(422, "bad_parameter", f"unknown query parameter {unknown[0]!r}: this operation takes "
                       f"{', '.join(allowed) or 'none'}.", parameter=unknown[0])


def date_param(request: Request, name: str) -> dt.date | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "bad_parameter", f"query parameter {name}={text!r}: expected a date, YYYY-MM-DD.",
                       parameter=name) from None


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
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


def choice_param(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in allowed:
        raise ApiError(422, "bad_parameter", f"query parameter {name}={value!r}: expected one of {', '.join(allowed)}.",
                       parameter=name)
    return value
