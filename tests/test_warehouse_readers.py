"""A client holding `warehouse.duckdb` open never makes a run wait or fail: the writer renames a new
file into place, the client keeps its snapshot, a new connection sees the new views.

The client is a real DuckDB connection in another process, opened read-only as the README shows."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import duckdb
import pytest

from assets.feeds import feed_named
from pipelines.definitions import build_definitions
from pipelines.runner import plan, run_stage
from tests.published import copied_home, published_home
from warehouse.lake.paths import TMP_PREFIX
from warehouse.lake.views import duckdb_config, refresh_warehouse_views
from warehouse.settings import REPO_ROOT

# Opens the warehouse read-only, says which marts views it sees, waits for a line on stdin, then says again.
CLIENT = textwrap.dedent("""
    import json, sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True, config={"file_search_path": sys.argv[2]})
    def views():
        return sorted(r[0] for r in con.execute(
            "select view_name from duckdb_views() where schema_name = 'marts'").fetchall())
    print(json.dumps(views()), flush=True)
    sys.stdin.readline()
    print(json.dumps(views()), flush=True)
""")


@pytest.fixture
def home(tmp_path, tmp_path_factory, library):
    settings = copied_home(published_home(tmp_path_factory, library), tmp_path / "home")
    con = duckdb.connect(str(settings.warehouse_db), config=duckdb_config(settings))
    con.execute("DROP VIEW marts.key_figures")     # the old snapshot lacks it; the refresh puts it back
    con.close()
    return settings


def _client(settings) -> tuple[subprocess.Popen, list[str]]:
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(settings.warehouse_db), str(settings.home)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    return client, json.loads(client.stdout.readline())


def _client_again(client: subprocess.Popen) -> list[str]:
    seen, _ = client.communicate("again\n", timeout=30)
    assert client.returncode == 0
    return json.loads(seen)


def _fresh_views(settings) -> list[str]:
    con = duckdb.connect(str(settings.warehouse_db), read_only=True, config=duckdb_config(settings))
    try:
        return sorted(r[0] for r in con.execute(
            "select view_name from duckdb_views() where schema_name = 'marts'").fetchall())
    finally:
        con.close()


def test_refreshing_the_views_while_a_client_holds_the_warehouse(home, monkeypatch):
    monkeypatch.setenv("SHUKU_LOCK_WAIT", "2")
    client, before = _client(home)
    try:
        assert "key_figures" not in before
        refresh_warehouse_views(home)
        assert "key_figures" not in _client_again(client)        # its snapshot, read to the end
    finally:
        client.kill()
    assert "key_figures" in _fresh_views(home)
    assert not list(home.home.glob(f"{TMP_PREFIX}*"))


@pytest.mark.slow   # a Dagster run of the core tables and marts: about 40 s
def test_a_run_succeeds_while_a_client_holds_the_warehouse(home, monkeypatch):
    monkeypatch.setenv("SHUKU_LOCK_WAIT", "2")
    client, before = _client(home)
    try:
        import dagster as dg
        stage = plan(home, None, None, [feed_named("turnstile")])[-1]
        result = run_stage(build_definitions(home), dg.DagsterInstance.ephemeral(), stage)
        assert result.success, result.error
        assert "key_figures" not in _client_again(client)
    finally:
        client.kill()
    assert "key_figures" in _fresh_views(home)
