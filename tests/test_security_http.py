"""Hostile requests to the HTTP interface, each with its exact status and error code: tokens in the
URL, bodies over the limit, inputs that were answered 500, rates on what anyone may ask, refusals
without a valid token logged as counts; and no token anywhere in the logs afterwards."""

from __future__ import annotations

import json
import time

import pytest
import requests

from pipelines.api import create_app, running
from pipelines.api_callers import ApiLimits
from tests.published import copied_home, published_home
from warehouse.audit import entries
from warehouse.lake.views import compute_connection
from warehouse.tokens import create_token


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    return copied_home(published_home(tmp_path_factory, library), tmp_path_factory.mktemp("http") / "home")


@pytest.fixture(scope="module")
def token(home):
    return create_token(home, "analyst", "security-suite")[1]


@pytest.fixture(scope="module")
def api(home, token):
    with running(create_app(home, ApiLimits(rate_per_s=1000, burst=1000, max_body_bytes=100_000))) as url:
        yield url


def _secret(token: str) -> str:
    return token.rsplit("_", 1)[1]


IN_URL = [
    ("/healthz?api_key={t}", "api_key"),
    ("/openapi.json?token={t}", "token"),
    ("/anything?api_key={t}", "api_key"),
    ("/api/v1/datasets?access_token={t}", "access_token"),
    ("/api/v1/datasets?Authorization=Bearer%20{t}", "Authorization"),
    ("/api/v1/datasets?apikey=x", "apikey"),
    ("/api/v1/datasets?password=hunter2", "password"),
    ("/api/v1/datasets/marts/key_figures/rows?limit=2&key={t}", "key"),
    ("/api/v1/datasets/marts/key_figures/rows?q={t}", "q"),
    ("/api/v1/trace/core.fact_loan.bib_id?session={t}", "session"),
    ("/api/v1/datasets?{t}=1", "<redacted>"),
]


@pytest.mark.parametrize("path, name", IN_URL, ids=[p.split("?")[1].split("=")[0] or p for p, _ in IN_URL])
def test_a_token_in_the_url_is_refused_and_not_logged(api, home, token, path, name):
    before = len(entries(home, "meta.access_log"))
    answer = requests.get(api + path.format(t=token), headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "credential_in_url" and f"query parameter {name!r} carries a credential" in body["message"]
    assert _secret(token) not in answer.text
    logged = entries(home, "meta.access_log")[before:]
    assert [e.row["outcome"] for e in logged] in ([], ["refused"])     # counted: one entry per window
    assert all(_secret(token) not in json.dumps(e.row, default=str) for e in logged)


def _post(api, token, data: bytes, headers=None):
    return requests.post(api + "/api/v1/query", data=data, timeout=60,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                  **(headers or {})})


HOSTILE_BODIES = [
    ({"sql": "SELECT 1 AS a, 2 AS a"}, 422, "duplicate_column"),
    ({"sql": "SELECT 1 AS a, 2 AS a", "format": "arrow"}, 422, "duplicate_column"),
    ({"sql": "SELECT 1 AS a, 2 AS a", "format": "parquet"}, 422, "duplicate_column"),
    ({"sql": "SELECT 1 AS a, 2 AS a", "format": "csv"}, 200, None),
    ({"sql": "SELECT '\ud800' AS s"}, 422, "bad_query"),
    ({"sql": "SELECT '\x00' AS s"}, 422, "bad_query"),
    ({"sql": "SELECT " + "(" * 3000 + "1" + ")" * 3000}, 422, "bad_query"),
    ({"sql": "SELECT 1", "format": "xml"}, 422, "bad_parameter"),
    ({"sql": 1}, 422, "bad_request"),
    ({"sql": ["SELECT 1"]}, 422, "bad_request"),
    ({"sql": "   "}, 422, "bad_request"),
    ({"query": "SELECT 1"}, 422, "bad_request"),
    ([{"sql": "SELECT 1"}], 422, "bad_request"),
    ({"sql": "SELECT patron_pid FROM core.fact_loan"}, 403, "forbidden"),
    ({"sql": "ATTACH '/tmp/x.duckdb' AS x"}, 403, "forbidden"),
    ({"sql": "SELECT * FROM read_text('/etc/passwd')"}, 403, "forbidden"),
    ({"sql": "SELECT 1; SELECT 2"}, 422, "bad_query"),
]


@pytest.mark.parametrize("body, status, error", HOSTILE_BODIES, ids=[f"{i:02d}" for i in range(len(HOSTILE_BODIES))])
def test_hostile_query_bodies_get_their_exact_answer_and_are_logged(api, home, token, body, status, error):
    before = len(entries(home, "meta.access_log"))
    answer = _post(api, token, json.dumps(body).encode())
    assert answer.status_code == status, answer.text
    if error:
        assert answer.json()["error"] == error
    logged = entries(home, "meta.access_log")[before:]
    assert logged and logged[-1].row["user_name"].startswith("api:security-suite:")
    assert logged[-1].row["outcome"] == ("allowed" if status == 200 else "refused" if status != 422 or error in (
        "bad_request", "bad_parameter", "bad_query", "duplicate_column") else "failed")


@pytest.mark.parametrize("data, status, error", [
    (b"not json", 422, "bad_request"),
    (b'{"sql": "\xff\xfe"}', 422, "bad_request"),
    (b"", 422, "bad_request"),
    (b'{"sql": "SELECT 1", "pad": "' + b"a" * 20_000_000 + b'"}', 413, "body_too_large"),
    (b'{"sql": "SELECT 1", "pad": "' + b"a" * 100_000 + b'"}', 413, "body_too_large"),
], ids=["not-json", "bad-utf8", "empty", "20MB", "just-over"])
def test_raw_bodies(api, token, data, status, error):
    answer = _post(api, token, data)
    assert (answer.status_code, answer.json()["error"]) == (status, error)


def test_a_body_sent_in_chunks_is_stopped_at_the_limit(api, token):
    def chunks():
        yield b'{"sql": "SELECT 1", "pad": "'
        for _ in range(200):
            yield b"a" * 10_000
        yield b'"}'
    answer = _post(api, token, chunks())
    assert (answer.status_code, answer.json()["error"]) == (413, "body_too_large")


@pytest.mark.parametrize("path, first", [("/healthz", 200), ("/openapi.json", 200), ("/no/such/path", 404),
                                         ("/api/v1/query", 405)])
def test_what_anyone_may_ask_has_a_rate_per_client(home, path, first):
    with running(create_app(home, ApiLimits(rate_per_s=0.01, burst=3))) as url:
        before = len(entries(home, "meta.access_log"))
        codes = [requests.get(url + path, timeout=30).status_code for _ in range(8)]
        logged = entries(home, "meta.access_log")[before:]
    assert codes == [first] * 3 + [429] * 5
    # three answered and logged one by one; the five over the rate, one entry counting the first of them
    assert len(logged) == 4 and "1 request(s) refused (rate_limited)" in logged[-1].row["reason"]


def test_bad_tokens_are_logged_as_counts_not_one_by_one(home):
    app = create_app(home, ApiLimits(rate_per_s=1000, burst=1000, refusal_window_s=0.5))
    with running(app) as url:
        before = len(entries(home, "meta.access_log"))
        bad = [requests.get(url + "/api/v1/datasets", headers={"Authorization": f"Bearer shuku_0000000{i % 10}_" + "x" * 43},
                            timeout=30).status_code for i in range(25)]
        time.sleep(0.6)
        last = requests.get(url + "/api/v1/datasets", timeout=30).status_code
        requests.get(url + "/api/v1/datasets", timeout=30)
        app.state.api.flush_refusals()          # (what the server does when it stops)
        logged = entries(home, "meta.access_log")[before:]
    assert bad == [401] * 25 and last == 401
    reasons = [e.row["reason"] for e in logged]
    assert [r.split(" request(s)")[0] for r in reasons] == ["1", "25", "1"]
    assert all(e.row["role"] == "anonymous" and e.row["sql_text"] == "refused requests: unauthorized" for e in logged)
    assert "x" * 43 not in json.dumps([e.row for e in logged], default=str)


def test_no_token_is_in_any_log_after_the_suite(api, home, token):
    """Last in this file: every token sent above, in headers or URLs, appears in no log entry or file."""
    requests.get(api + f"/healthz?api_key={token}", timeout=30)
    secret = _secret(token)
    con = compute_connection(home)
    try:
        rows = con.execute("SELECT * FROM meta.access_log").fetchall()
    finally:
        con.close()
    assert rows and secret not in json.dumps(rows, default=str)
    for path in home.home.rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".json", ".log", ".txt", ".csv"):
            assert secret not in path.read_text(encoding="utf-8", errors="replace"), path
