"""A small COUNTER_SUSHI 5.1 server on 127.0.0.1 for the harvest tests: it answers as real servers do
when they queue a report (202 + 1011, then the report), refuse a key (401 + 2000), have no usage
(3030), have partial data (3040) or are not active, and it records every request it was sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

API_KEY = "k3y-that-must-never-be-stored"
PLATFORM = "Test Platform"


def months(begin: str, end: str) -> list[str]:
    year, month = map(int, begin[:7].split("-"))
    found = []
    while f"{year:04d}-{month:02d}" <= end[:7]:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def report(report_id: str, begin: str, end: str, exceptions: list[dict] | None = None, items: bool = True) -> dict:
    """A COUNTER R5.1 report in COUNTER_SUSHI JSON with one item and the same counts each month."""
    counts = {"Total_Item_Investigations": 12, "Total_Item_Requests": 10, "Unique_Item_Investigations": 8,
              "Unique_Item_Requests": 7}
    performance = {metric: {m: n for m in months(begin, end)} for metric, n in counts.items()}
    header = {"Release": "5.1", "Report_ID": report_id, "Report_Name": f"{report_id} report",
              "Created": "2025-10-02T08:00:00Z", "Created_By": "Test Server", "Institution_Name": "Demo University",
              "Institution_ID": {"Proprietary": ["TS:1"]},
              "Report_Filters": {"Begin_Date": f"{begin[:7]}-01", "End_Date": f"{end[:7]}-28"}, "Report_Attributes": {}}
    if exceptions:
        header["Exceptions"] = exceptions
    item = {"Platform": PLATFORM, "Attribute_Performance": [{"Data_Type": "Journal", "Access_Method": "Regular",
                                                             "Performance": performance}]}
    if report_id == "DR":
        item = {"Database": "Test Database", "Publisher": "Test Publisher", **item}
    elif report_id == "TR":
        item = {"Title": "Journal of Tests", "Item_ID": {"Print_ISSN": "1234-5678"}, "Publisher": "Test Publisher",
                **item}
        item["Attribute_Performance"][0] |= {"YOP": "2020", "Access_Type": "Controlled"}
    return {"Report_Header": header, "Report_Items": [item] if items else []}


def exception(code: int, message: str, data: str | None = None) -> dict:
    return {"Code": code, "Message": message, **({"Data": data} if data else {})}


class SushiServer:
    """``behaviour``: report id (lower case) → 'queued-then-ready', 'always-queued', 'partial', 'no-usage',
    'no-usage-bare' or 'ready' (default); ``active=False`` makes /status say the service is not active."""

    def __init__(self, behaviour: dict[str, str] | None = None, active: bool = True, queued_times: int = 1):
        self.behaviour, self.active, self.queued_times = behaviour or {}, active, queued_times
        self.requests: list[tuple[str, dict]] = []
        self._asked: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                server.requests.append((parts.path, query))
                status, body = server.answer(parts.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/r51"

    def answer(self, path: str, query: dict) -> tuple[int, object]:
        if path == "/r51/status":
            return 200, [{"Description": "Test server", "Service_Active": self.active, "Note": "maintenance"}]
        if query.get("api_key") != API_KEY:
            return 401, exception(2020, "API Key Invalid")
        report_id = path.rsplit("/", 1)[-1]
        begin, end = query["begin_date"], query["end_date"]
        kind = self.behaviour.get(report_id, "ready")
        key = f"{report_id} {begin} {end}"
        self._asked[key] = self._asked.get(key, 0) + 1
        if kind == "always-queued" or (kind == "queued-then-ready" and self._asked[key] <= self.queued_times):
            return 202, exception(1011, "Report Queued for Processing", "ready in a moment")
        if kind == "no-usage":
            return 200, report(report_id.upper(), begin, end,
                               [exception(3030, "No Usage Available for Requested Dates")], items=False)
        if kind == "no-usage-bare":
            return 200, exception(3030, "No Usage Available for Requested Dates")
        if kind == "partial":
            return 200, report(report_id.upper(), begin, end,
                               [exception(3040, "Partial Data Returned", "logging failed on 3 days")])
        return 200, report(report_id.upper(), begin, end)

    def __enter__(self) -> "SushiServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
