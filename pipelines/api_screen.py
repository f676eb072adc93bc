"""What the HTTP interface checks before it answers: no credential in the URL, no body over the
limit; and what it logs of refusals nobody is accountable for (no valid token, over a rate),
counted and written as one access-log entry per kind and window rather than one per request.

A token belongs in the ``Authorization`` header only: in a URL it lands in proxy logs, browser
histories and referrers. A request carrying one in its query string is refused, and the line
logged has the value replaced by ``<redacted>``.
"""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import Response

from pipelines.api_http import ApiError, json_response

# Query parameter names that carry credentials by convention, and the shape of a Shuku token.
CREDENTIAL_NAMES = re.compile(r"(?i)^(api[_-]?key|apikey|key|token|access[_-]?token|auth|authorization|bearer|"
                              r"password|passwd|secret|client[_-]?secret|session)$")
TOKEN_TEXT = re.compile(r"shuku_[0-9a-fA-F]{8}_[A-Za-z0-9_-]*")
REDACTED = "<redacted>"


def _credential(name: str, value: str) -> bool:
    return bool(CREDENTIAL_NAMES.match(name.strip()) or TOKEN_TEXT.search(name) or TOKEN_TEXT.search(value))


def credential_in_query(query: str) -> str | None:
    """The name of the first query parameter that carries a credential, or None."""
    for name, value in parse_qsl(query, keep_blank_values=True):
        if _credential(name, value):
            return name if not TOKEN_TEXT.search(name) else REDACTED
    return None


def logged_line(method: str, path: str, query: str) -> str:
    """The request line as the access log keeps it: credential-like values and tokens redacted."""
    line = f"{method} {TOKEN_TEXT.sub(REDACTED, path)}"
    if not query:
        return line
    pairs = [(TOKEN_TEXT.sub(REDACTED, n), REDACTED if _credential(n, v) else v)
             for n, v in parse_qsl(query, keep_blank_values=True)]
    return f"{line}?{urlencode(pairs, safe='<>')}"


async def limited_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit`` bytes (declared or sent: reading stops there)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class RefusalTally:
    """Refusals counted per kind; ``add`` says when to write one entry for those counted so far:
    at the first refusal of a kind, then at the first one after each ``window_s``."""

    def __init__(self, window_s: float):
        self.window = window_s
        self.counts: dict[str, int] = {}
        self.logged_at: dict[str, float] = {}
        self.lock = threading.Lock()

    def add(self, kind: str) -> int | None:
        """The number of refusals to log now (this one included), or None while the window runs."""
        now = time.monotonic()
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if now - self.logged_at.get(kind, float("-inf")) < self.window:
                return None
            self.logged_at[kind] = now
            return self.counts.pop(kind)

    def pending(self) -> dict[str, int]:
        """The counts not yet logged, emptied (at shutdown)."""
        with self.lock:
            counts, self.counts = self.counts, {}
            return counts


def error_response(request: Request, exc: Exception) -> Response:
    """An error as JSON, logged: one by one when someone is accountable for it (a token), else counted."""
    api = request.app.state.api
    if not isinstance(exc, ApiError):
        try:
            api.screen(request, anyone=True)     # an unknown path is what anyone may ask, too
        except ApiError as refusal:
            exc = refusal
    if isinstance(exc, ApiError):
        status, error, message, headers, extra = exc.status, exc.error, exc.message, exc.headers, dict(exc.extra)
        token = extra.pop("token", None)
        logged = exc.logged
        if "tally" in extra:
            api.tally(request, extra.pop("tally"), message)
            logged = True
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
            except Exception:    # noqa: BLE001 - a broken token file is reported by the request itself
                token = None
        api.log(request, token, "refused", message)
    return json_response({"error": error, "message": message, **extra}, status=status, headers=headers)
