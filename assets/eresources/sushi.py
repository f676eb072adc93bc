"""A COUNTER_SUSHI client: one platform's `/status` and its reports, with the Code of Practice's answers
to each exception.

Queued (1011), busy (1010), unavailable (1000) and too-many-requests (1020) answers, and a server that
does not answer, are asked again after a wait that doubles each time (or the server's Retry-After);
the wait is a function given by the caller, so tests do not sleep. What comes back is the last
answer as bytes, with the request that fetched it — never with the API key, which is withheld from
every record and message.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Callable

import requests

from warehouse.counter_platforms import SushiPlatform

# Asked again later: the service is down, busy, still preparing the report, or limits the client.
RETRY_CODES = {1000, 1010, 1011, 1020}
RETRY_HTTP = {202, 429, 500, 502, 503, 504}
TIMEOUT_SECONDS = 120
WITHHELD = "(withheld)"


@dataclass
class Answer:
    """The last answer to one request, after any retries."""

    url: str
    params: dict[str, str]             # as sent, the API key withheld
    http_status: int | None            # None: no answer at all
    body: bytes = b""
    content_type: str | None = None
    doc: object = None                 # the body as JSON, when it is JSON
    error: str | None = None           # why there was no usable answer (no secret in it)
    retry_after: str | None = None     # the server's Retry-After header
    attempts: int = 1
    waited_seconds: float = 0.0
    requested_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def is_report(self) -> bool:
        return isinstance(self.doc, dict) and isinstance(self.doc.get("Report_Header"), dict)

    @property
    def exceptions(self) -> list[dict]:
        """The COUNTER exceptions of the answer: a bare one, a list of them, or the report header's."""
        return exceptions_of(self.doc)

    @property
    def codes(self) -> set[int]:
        return {e["code"] for e in self.exceptions if isinstance(e["code"], int)}

    def record(self) -> dict:
        """The request and what came back, for landing beside the answer (no secret)."""
        return {"url": self.url, "params": self.params, "requested_at": self.requested_at.isoformat(timespec="seconds"),
                "http_status": self.http_status, "content_type": self.content_type, "attempts": self.attempts,
                "waited_seconds": self.waited_seconds, "bytes": len(self.body)}


def exceptions_of(doc) -> list[dict]:
    if isinstance(doc, dict) and isinstance(doc.get("Report_Header"), dict):
        items = doc["Report_Header"].get("Exceptions") or []
    elif isinstance(doc, dict) and isinstance(doc.get("Exception"), dict):   # some Release 5 servers wrap it
        items = [doc["Exception"]]
    elif isinstance(doc, dict):
        items = [doc] if "Code" in doc else []
    elif isinstance(doc, list):
        items = doc
    else:
        items = []
    found = []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict) and "Code" in item:
            code = item.get("Code")
            found.append({"code": int(code) if str(code).strip().isdigit() else None,
                          "message": str(item.get("Message") or "").strip(), "data": item.get("Data")})
    return found


def describe(exceptions: list[dict]) -> str:
    """`1011 Report Queued for Processing (data)` for each exception."""
    parts = []
    for e in exceptions:
        text = f"{e['code'] if e['code'] is not None else '?'} {e['message']}".strip()
        parts.append(f"{text} ({str(e['data'])[:120]})" if e.get("data") else text)
    return "; ".join(parts)


class SushiClient:
    """Requests to one platform's SUSHI server."""

    def __init__(self, platform: SushiPlatform, api_key: str | None, *, attempts: int, wait_seconds: float,
                 sleep: Callable[[float], None], session: requests.Session | None = None):
        self.platform, self._api_key = platform, api_key
        self.attempts, self.wait_seconds, self.sleep = attempts, wait_seconds, sleep
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "Shuku COUNTER_SUSHI harvester")

    def redact(self, text: str) -> str:
        """``text`` without the API key (a URL in an error message carries it)."""
        return text.replace(self._api_key, WITHHELD) if self._api_key else text

    def _params(self, credentials: bool) -> dict[str, str]:
        p = self.platform
        params = {"customer_id": p.customer_id} if credentials else {}
        if credentials and p.requestor_id:
            params["requestor_id"] = p.requestor_id
        if p.platform:
            params["platform"] = p.platform
        return params

    def status(self) -> Answer:
        """`/status` (Release 5 servers may want the credentials there too; 5.1 takes the platform only)."""
        release5 = self.platform.release == "5"
        return self._get("status", self._params(credentials=release5), with_key=release5)

    def report(self, report_id: str, begin: str, end: str) -> Answer:
        """One report for the months ``begin``..``end`` (YYYY-MM)."""
        params = self._params(credentials=True) | {"begin_date": begin, "end_date": end}
        return self._get(f"reports/{report_id.lower()}", params, with_key=True)

    def _get(self, path: str, params: dict[str, str], with_key: bool) -> Answer:
        url = f"{self.platform.base_url}/{path}"
        sent = dict(params)
        if with_key and self._api_key:
            sent["api_key"] = self._api_key
        shown = {k: (WITHHELD if k == "api_key" else v) for k, v in sent.items()}
        waited, wait = 0.0, self.wait_seconds
        for attempt in range(1, self.attempts + 1):
            answer = self._once(url, sent, shown)
            answer.attempts, answer.waited_seconds = attempt, waited
            if attempt == self.attempts or not self._retry(answer):
                return answer
            pause = _retry_after(answer) or wait
            self.sleep(pause)
            waited += pause
            wait *= 2
        raise AssertionError("unreachable")

    def _once(self, url: str, sent: dict, shown: dict) -> Answer:
        try:
            response = self.session.get(url, params=sent, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            reason = self.redact(f"{type(exc).__name__}: {exc}")[:300]
            return Answer(url, shown, None, error=f"no answer from {url}: {reason}")
        answer = Answer(url, shown, response.status_code, response.content, response.headers.get("Content-Type"),
                        retry_after=response.headers.get("Retry-After"))
        try:
            answer.doc = json.loads(response.content.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer.error = f"HTTP {response.status_code}: the answer is not JSON ({_preview(response.content)})"
        return answer

    @staticmethod
    def _retry(answer: Answer) -> bool:
        if answer.http_status is None:
            return True
        if answer.is_report:
            return False
        return bool(answer.codes & RETRY_CODES) or (answer.http_status in RETRY_HTTP and not answer.codes)


def _retry_after(answer: Answer) -> float | None:
    value = answer.retry_after
    try:
        return min(float(value), 3600.0) if value is not None else None
    except ValueError:
        return None


def _preview(body: bytes) -> str:
    text = body[:80].decode("utf-8", "replace").replace("\n", " ").strip()
    return f"begins {text!r}" if text else "empty"
