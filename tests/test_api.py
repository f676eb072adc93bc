"""The HTTP interface over real HTTP on 127.0.0.1 (uvicorn in a thread), on the published test warehouse:
list, read and query within a role, refused outside it, limits, tokens, and every request in the access log."""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlsplit

import polars as pl
import pytest
import requests
from click.testing import CliRunner

from pipelines.api import create_app, running
from pipelines.api_callers import ApiLimits
from pipelines.cli import main
from tests.published import copied_home, published_home
from schemas.model import contract_for
from schemas.roles import visible_columns
from warehouse.audit import entries, verify
from warehouse.guarded import run_guarded
from warehouse.tokens import create_token, revoke_token, tokens_path

ROLES = ("public", "analyst", "auditor", "privacy_officer")


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    """A copy of the session's published home: the tests make tokens and write the access log."""
    return copied_home(published_home(tmp_path_factory, library), tmp_path_factory.mktemp("api") / "home")


@pytest.fixture(scope="module")
def tokens(home):
    return {role: create_token(home, role, f"test-{role}")[1] for role in ROLES}


@pytest.fixture(scope="module")
def api(home, tokens):
    with running(create_app(home, ApiLimits(rate_per_s=1000, burst=1000))) as url:
        yield url


def _get(api, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(api + path, headers=headers, params=params, timeout=60)


def _query(api, token, sql, **extra):
    return requests.post(api + "/api/v1/query", headers={"Authorization": f"Bearer {token}"},
                         json={"sql": sql, **extra}, timeout=60)


def test_datasets_are_those_of_the_role_with_only_visible_columns(api, tokens):
    for role in ("public", "analyst", "auditor"):
        answer = _get(api, "/api/v1/datasets", tokens[role])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["role"] == role
        listed = {d["name"]: d for d in body["datasets"]}
        for name, dataset in listed.items():
            assert [c["name"] for c in dataset["columns"]] == [c.name for c in visible_columns(role, contract_for(name))]
        layers = {d["layer"] for d in listed.values()}
        assert layers == {"public": {"marts"}, "analyst": {"core", "marts"}, "auditor": {"core", "marts", "meta"}}[role]
    analyst = {d["name"]: d for d in _get(api, "/api/v1/datasets", tokens["analyst"]).json()["datasets"]}
    assert "patron_pid" not in [c["name"] for c in analyst["core.fact_loan"]["columns"]]
    fresh = analyst["marts.space_utilisation"]["freshness"]
    assert fresh["rows"] > 0 and fresh["newest"] and fresh["published_at"]
    one = _get(api, "/api/v1/datasets/marts/space_utilisation", tokens["analyst"]).json()
    assert one["contract"]["id"] == "shuku.marts.space_utilisation" and one["filter_column"]


def test_rows_page_by_page_in_every_format(api, tokens, home):
    token = tokens["analyst"]
    path = "/api/v1/datasets/marts/space_utilisation/rows"
    first = _get(api, path, token, limit=7).json()
    second = _get(api, path, token, limit=7, offset=7).json()
    assert first["count"] == second["count"] == 7
    assert parse_qs(urlsplit(first["next"]).query) == {"limit": ["7"], "offset": ["7"]}
    keys = ["event_date", "event_hour", "zone_code"]
    seen = [tuple(r[k] for k in keys) for r in first["rows"] + second["rows"]]
    assert len(set(seen)) == 14
    everything = run_guarded(home, "SELECT count(*) FROM marts.space_utilisation", "analyst").rows[0][0]
    pages, offset = 0, 0
    while True:
        page = _get(api, path, token, limit=1000, offset=offset).json()
        pages, offset = pages + page["count"], offset + 1000
        if not page["next"]:
            break
    assert pages == everything
    csv_text = _get(api, path, token, limit=7, format="csv").text
    parquet = pl.read_parquet(io.BytesIO(_get(api, path, token, limit=7, format="parquet").content))
    arrow = pl.read_ipc_stream(io.BytesIO(_get(api, path, token, limit=7, format="arrow").content))
    assert parquet.equals(arrow) and parquet.height == 7
    assert csv_text.splitlines()[0].split(",") == parquet.columns == list(first["rows"][0])
    assert parquet.get_column("zone_code").to_list() == [r["zone_code"] for r in first["rows"]]
    assert parquet.schema["event_date"] == pl.Date and parquet.schema["utilisation"] == pl.Float64


def test_rows_filter_on_the_date_column(api, tokens):
    token = tokens["analyst"]
    described = _get(api, "/api/v1/datasets/marts/space_utilisation", token).json()
    column = described["filter_column"]
    path = "/api/v1/datasets/marts/space_utilisation/rows"
    whole = _get(api, path, token, limit=10000).json()["rows"]
    days = sorted({r[column][:10] for r in whole})
    assert len(days) >= 2
    one = _get(api, path, token, limit=10000, **{f"{column}_from": days[1], f"{column}_to": days[1]}).json()["rows"]
    assert one and {r[column][:10] for r in one} == {days[1]}
    assert len(one) == sum(1 for r in whole if r[column][:10] == days[1])
    bad = _get(api, path, token, **{f"{column}_from": "01/09/2025"})
    assert bad.status_code == 422 and bad.json()["parameter"] == f"{column}_from"


def test_query_through_the_guard_as_shuku_sql_does(api, tokens, home):
    sql = "SELECT zone_code, max(occupancy_peak) AS peak FROM marts.space_utilisation GROUP BY ALL ORDER BY zone_code"
    answer = _query(api, tokens["analyst"], sql)
    assert answer.status_code == 200, answer.text
    expected = run_guarded(home, sql, "analyst")
    assert answer.json()["columns"] == expected.columns
    assert [tuple(r.values()) for r in answer.json()["rows"]] == [tuple(r) for r in expected.rows]

    refused = _query(api, tokens["analyst"], "SELECT * FROM core.fact_loan LIMIT 3")
    assert refused.status_code == 403
    assert "core.fact_loan.patron_pid" in refused.json()["refused"] and "EXCLUDE" in refused.json()["message"]
    layer = _query(api, tokens["public"], "SELECT count(*) FROM core.fact_loan")
    assert layer.status_code == 403 and layer.json()["refused"] == ["core.fact_loan"]
    files = _query(api, tokens["privacy_officer"], "SELECT count(*) FROM read_parquet('/etc/passwd')")
    assert files.status_code == 403 and "read_parquet" in files.json()["message"]
    bad = _query(api, tokens["analyst"], "SELEC zone_code FROM marts.space_utilisation")
    assert bad.status_code == 422 and bad.json()["error"] == "bad_query"
    unknown = _query(api, tokens["analyst"], "SELECT nothing FROM marts.space_utilisation")
    assert unknown.status_code == 422
    empty = requests.post(api + "/api/v1/query", headers={"Authorization": f"Bearer {tokens['analyst']}"},
                          data=b"not json", timeout=30)
    assert empty.status_code == 422 and "JSON" in empty.json()["message"]
    csv_answer = _query(api, tokens["analyst"], sql, format="csv")
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert len(csv_answer.text.splitlines()) == len(expected.rows) + 1


def test_no_token_a_bad_token_and_a_revoked_token_get_401(api, home):
    assert _get(api, "/api/v1/datasets").status_code == 401
    assert _get(api, "/api/v1/datasets", "shuku_00000000_" + "x" * 43).status_code == 401
    made, text = create_token(home, "analyst", "soon-revoked")
    assert _get(api, "/api/v1/datasets", text).status_code == 200
    revoke_token(home, made.token_id)
    gone = _get(api, "/api/v1/datasets", text)
    assert gone.status_code == 401 and gone.headers["www-authenticate"] == "Bearer"
    assert "revoked" in gone.json()["message"] and text not in gone.text


def test_trace_as_shuku_trace_gives_it_for_roles_that_read_meta(api, tokens, home):
    target = "marts.space_utilisation.occupancy_peak"
    answer = _get(api, f"/api/v1/trace/{target}", tokens["auditor"])
    assert answer.status_code == 200, answer.text
    cli = CliRunner().invoke(main, ["trace", target, "--format", "json"], env={"SHUKU_HOME": str(home.home)})
    assert cli.exit_code == 0, cli.output
    assert answer.json() == json.loads(cli.output)
    assert answer.json()["landing_files"]
    assert _get(api, f"/api/v1/trace/{target}", tokens["analyst"]).status_code == 403
    hidden = _get(api, "/api/v1/trace/core.fact_loan.patron_pid", tokens["auditor"])
    assert hidden.status_code == 403 and hidden.json()["refused"] == ["core.fact_loan.patron_pid"]
    assert _get(api, "/api/v1/trace/marts.space_utilisation.nothing", tokens["auditor"]).status_code == 422


def test_every_request_is_in_the_access_log_and_the_chain_holds(api, tokens, home):
    before = len(entries(home, "meta.access_log"))
    answers = [
        _get(api, "/api/v1/datasets", tokens["public"]),
        _get(api, "/api/v1/datasets/marts/key_figures/rows", tokens["public"], limit=2),
        _query(api, tokens["analyst"], "SELECT count(*) FROM marts.key_figures"),
        _query(api, tokens["analyst"], "SELECT patron_pid FROM core.fact_loan"),
        _get(api, "/api/v1/nothing-here", tokens["analyst"]),
    ]
    # (refusals without a valid token are counted, one entry per window: tests/test_security_http.py)
    assert [a.status_code for a in answers] == [200, 200, 200, 403, 404]
    logged = entries(home, "meta.access_log")[before:]
    assert len(logged) == len(answers)
    assert [e.row["outcome"] for e in logged] == ["allowed", "allowed", "allowed", "refused", "refused"]
    assert [e.row["role"] for e in logged] == ["public", "public", "analyst", "analyst", "analyst"]
    assert all(e.row["user_name"].startswith("api:test-") for e in logged if e.row["role"] != "anonymous")
    assert logged[1].row["rows_returned"] == 2 and "marts.key_figures" in logged[1].row["objects"]
    assert logged[3].row["reason"].startswith("column core.fact_loan.patron_pid is confidential")
    assert {r.log: r for r in verify(home)}["meta.access_log"].ok


def test_concurrent_clients_are_all_answered_and_logged(api, tokens, home):
    """A bounded load: 8 clients × 6 requests at once; nothing lost, each in the log, one chain."""
    from concurrent.futures import ThreadPoolExecutor

    before = len(entries(home, "meta.access_log"))

    def client(n: int) -> list[int]:
        token = tokens[ROLES[n % len(ROLES)]]
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            codes = []
            for k in range(6):
                if k % 2:
                    answer = session.post(api + "/api/v1/query", json={"sql": "SELECT count(*) FROM marts.key_figures"},
                                          timeout=60)
                else:
                    answer = session.get(api + "/api/v1/datasets/marts/key_figures/rows", params={"limit": 3}, timeout=60)
                codes.append(answer.status_code)
            return codes

    with ThreadPoolExecutor(8) as pool:
        codes = [c for result in pool.map(client, range(8)) for c in result]
    assert codes == [200] * 48
    logged = entries(home, "meta.access_log")[before:]
    assert len(logged) == 48 and all(e.row["outcome"] == "allowed" for e in logged)
    assert len({e.seq for e in logged}) == 48
    assert {r.log: r for r in verify(home)}["meta.access_log"].ok


def test_limits_answer_422_and_429(home):
    made, token = create_token(home, "analyst", "limited")
    limits = ApiLimits(page_size=2, max_page_size=5, query_timeout_s=0.2, max_query_rows=3, rate_per_s=0.01, burst=4)
    with running(create_app(home, limits)) as url:
        too_big = _get(url, "/api/v1/datasets/marts/space_utilisation/rows", token, limit=6)
        assert too_big.status_code == 422 and "5" in too_big.json()["message"]
        rows = _query(url, token, "SELECT zone_code FROM marts.space_utilisation")
        assert rows.status_code == 422 and rows.json()["error"] == "result_too_large"
        # A four-way cross join: hundreds of millions of row combinations, stopped by the time limit.
        slow = _query(url, token, "SELECT count(*) FROM marts.space_utilisation a, marts.space_utilisation b, "
                                  "marts.space_utilisation c, marts.space_utilisation d "
                                  "WHERE a.utilisation * b.utilisation > c.utilisation * d.utilisation + a.entries")
        assert slow.status_code == 422 and slow.json()["error"] == "query_timeout", slow.text
        assert _get(url, "/api/v1/datasets", token).status_code == 200      # the 4th request of the burst
        over = _get(url, "/api/v1/datasets", token)
        assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
        assert over.json()["error"] == "rate_limited"
        # Another token has its own bucket.
        other = create_token(home, "public", "unlimited")[1]
        assert _get(url, "/api/v1/datasets", other).status_code == 200
        # Requests without a valid token share one.
        assert [_get(url, "/api/v1/datasets", "shuku_nonsense").status_code for _ in range(5)] == [401] * 4 + [429]


def test_token_cli_shows_the_secret_once_and_stores_only_its_hash(home):
    env = {"SHUKU_HOME": str(home.home)}
    runner = CliRunner()
    made = runner.invoke(main, ["token", "create", "--role", "auditor", "--name", "research-office"], env=env)
    assert made.exit_code == 0, made.output
    secret = next(line for line in made.output.splitlines() if line.startswith("shuku_"))
    token_id = secret.split("_")[1]
    stored = tokens_path(home).read_text()
    assert secret.split("_", 2)[2] not in stored and token_id in stored
    assert tokens_path(home).stat().st_mode & 0o777 == 0o600
    listed = runner.invoke(main, ["token", "list"], env=env)
    assert token_id in listed.output and "research-office" in listed.output and secret not in listed.output
    assert runner.invoke(main, ["token", "revoke", token_id], env=env).exit_code == 0
    assert runner.invoke(main, ["token", "revoke", "ffffffff"], env=env).exit_code == 2
    bad = runner.invoke(main, ["token", "create", "--role", "librarian", "--name", "x"], env=env)
    assert bad.exit_code == 2 and "unknown role" in bad.output
