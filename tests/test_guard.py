"""The SQL guard: hostile and tricky queries per role, the access log, and guarded runs on published databases."""

from __future__ import annotations

import getpass

import duckdb
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from tests.published import published_home
from warehouse.guard import ALLOWED_FUNCTIONS, guard
from warehouse.guarded import QueryRefused, run_guarded
from warehouse.lake.views import compute_connection
from warehouse.library import load_library
from warehouse.log_redaction import logged_digest, redact_logged

A, P, DL, AU, PO = "analyst", "public", "data_librarian", "auditor", "privacy_officer"
OK = "allowed"

CASES = [
    # Fine for each role.
    ("SELECT bib_id, count(*) AS loans FROM core.fact_loan GROUP BY bib_id ORDER BY loans DESC LIMIT 5", A, OK, []),
    ("SELECT zone_code, avg(utilisation) FROM marts.space_utilisation GROUP BY ALL", P, OK, []),
    ("SELECT * FROM marts.space_utilisation", P, OK, []),
    ("SELECT zone_code FROM marts.space_utilisation WHERE entries > 1 AND exits < 3 OR NOT entries = 0", P, OK, []),
    ("SELECT zone_code FROM marts.space_utilisation WHERE entries > 1 AND read_csv('x') IS NULL", P, "refused", ["read_csv"]),
    ("SELECT patron_pid, count(*) FROM core.fact_loan GROUP BY 1", DL, OK, []),
    ("SELECT count(*) FROM meta.ingest_log", AU, OK, []),
    ("SELECT query_text FROM staging.search", PO, OK, []),
    ("SELECT staging_table, reason, count(*) FROM quarantine.gates GROUP BY ALL", DL, OK, []),
    ("FROM core.dim_title SELECT title LIMIT 3", A, OK, []),
    ("SELECT 1", A, OK, []),
    # Aliases, stars and star modifiers.
    ("SELECT l.bib_id AS b FROM core.fact_loan AS l ORDER BY b", A, OK, []),
    ("SELECT * FROM core.fact_loan", A, "refused", ["core.fact_loan.patron_pid", "confidential", "analyst", "EXCLUDE"]),
    ("SELECT t.* FROM core.fact_loan t", A, "refused", ["core.fact_loan.patron_pid", "confidential"]),
    ("SELECT * EXCLUDE (patron_pid) FROM core.fact_loan", A, OK, []),
    ("SELECT * EXCLUDE (loan_id) FROM core.fact_loan", A, "refused", ["patron_pid"]),
    ("SELECT * REPLACE (upper(bib_id) AS bib_id) FROM core.fact_loan", A, "refused", ["patron_pid"]),
    ("SELECT COLUMNS('.*') FROM core.fact_loan", A, "refused", ["core.fact_loan.patron_pid"]),
    ("SELECT COLUMNS('pid') FROM core.fact_search", A, "refused", ["core.fact_search.patron_pid"]),
    ("SELECT COLUMNS('^bib') FROM core.fact_loan", A, OK, []),
    ("SELECT COLUMNS(c -> c LIKE '%id') FROM core.fact_loan", A, "refused", ["patron_pid"]),
    ("SELECT t FROM core.fact_loan t", A, "refused", ["core.fact_loan.patron_pid", "table alias"]),
    ("SELECT #4 FROM core.fact_loan", A, "refused", ["positional"]),
    ("SELECT concat(*) FROM core.fact_loan", A, "refused", ["*", "CONCAT"]),
    # CTEs, subqueries, derived tables, UNION branches, lateral joins, correlation.
    ("WITH p AS (SELECT patron_pid AS who FROM core.fact_loan) SELECT count(*) FROM p", A, "refused", ["core.fact_loan.patron_pid"]),
    ("WITH a AS (SELECT * FROM core.fact_search), b AS (SELECT * FROM a) SELECT hit_count FROM b", A, "refused", ["core.fact_search.query_normalised"]),
    ("SELECT x FROM (SELECT y AS x FROM (SELECT department AS y FROM core.dim_patron) d1) d2", A, "refused", ["core.dim_patron.department"]),
    ("SELECT bib_id FROM core.fact_loan UNION ALL SELECT query_normalised FROM core.fact_search", A, "refused", ["core.fact_search.query_normalised"]),
    ("SELECT bib_id FROM core.dim_title EXCEPT SELECT bib_id FROM core.fact_loan WHERE patron_pid IS NULL", A, "refused", ["core.fact_loan.patron_pid"]),
    ("SELECT l.x FROM core.fact_loan f, LATERAL (SELECT f.patron_pid AS x) l", A, "refused", ["core.fact_loan.patron_pid"]),
    ("SELECT bib_id FROM core.fact_loan l WHERE EXISTS (SELECT 1 FROM core.fact_search s WHERE s.patron_pid = l.patron_pid)", A, "refused", ["patron_pid"]),
    ("SELECT bib_id FROM core.fact_loan WHERE loan_id IN (SELECT session_id FROM core.fact_search)", A, OK, []),
    ("SELECT upper(substr(query_normalised, 1, 3)) FROM core.fact_search", A, "refused", ["core.fact_search.query_normalised"]),
    ("SELECT query_text FROM staging.search", DL, OK, []),
    ("SELECT count(*) FROM core.fact_loan WHERE patron_pid LIKE 'a%'", A, "refused", ["patron_pid"]),
    ("SELECT bib_id FROM core.fact_loan ORDER BY patron_pid", A, "refused", ["patron_pid"]),
    ("SELECT count(DISTINCT patron_pid) FROM core.fact_loan", P, "refused", ["core.fact_loan", "layer core", "public"]),
    ("SELECT * FROM core.fact_loan l JOIN core.dim_patron p USING (patron_pid)", A, "refused", ["core.dim_patron.patron_pid"]),
    # Layers.
    ("SELECT count(*) FROM meta.ingest_log", A, "refused", ["meta.ingest_log", "layer meta", "analyst"]),
    ("SELECT reason FROM quarantine.circulation", A, "refused", ["quarantine.circulation", "layer quarantine"]),
    ("SELECT raw_text FROM quarantine.circulation", AU, "refused", ["layer quarantine"]),
    ("SELECT event_at FROM staging.gate_event", A, "refused", ["staging.gate_event", "layer staging"]),
    ("SELECT title FROM core.dim_title", P, "refused", ["layer core"]),
    ("SELECT role, outcome FROM meta.access_log", AU, OK, []),
    # Unknown tables and columns.
    ("SELECT * FROM fact_loan", A, "refused", ["unknown table", "layer.table"]),
    ("SELECT * FROM core.no_such_table", A, "refused", ["unknown table core.no_such_table"]),
    ("SELECT * FROM information_schema.columns", A, OK, []),
    ("SELECT * FROM information_schema.key_column_usage", A, "refused", ["unknown table information_schema.key_co"]),
    ("SELECT * FROM marts.utilization", A, "refused", ["unknown table", "Did you mean marts.space_utilisation"]),
    ("SELECT * FROM 'lake/core/fact_loan/part-0.parquet'", A, "refused", ["unknown table"]),
    ("SELECT no_such_column FROM core.fact_loan", A, "refused", ["resolved"]),
    ("SELECT x.bib_id FROM analyst.core.fact_loan x", A, "refused", ["without a database"]),
    # Files, environment, settings, catalog.
    ("SELECT * FROM read_parquet('/etc/passwd')", A, "refused", ["read_parquet"]),
    ("SELECT * FROM read_csv_auto('x.csv')", A, "refused", ["read_csv"]),
    ("SELECT * FROM read_json('x.json')", A, "refused", ["read_json"]),
    ("SELECT * FROM parquet_scan('x.parquet')", A, "refused", ["parquet_scan"]),
    ("SELECT * FROM glob('*')", A, "refused", ["glob"]),
    ("SELECT content FROM read_text('/etc/hostname')", A, "refused", ["read_text"]),
    ("SELECT * FROM query('SELECT * FROM core.fact_loan')", A, "refused", ["query"]),
    ("SELECT * FROM duckdb_tables()", A, "refused", ["duckdb_tables"]),
    ("SELECT getenv('HOME')", A, "refused", ["getenv"]),
    ("SELECT current_setting('enable_external_access')", A, "refused", ["current_setting"]),
    ("SELECT bib_id FROM core.fact_loan WHERE bib_id IN (SELECT * FROM read_parquet('x'))", A, "refused", ["read_parquet"]),
    # Statements other than queries, and smuggled ones.
    ("SELECT 'x'; DROP TABLE core.fact_loan", A, "refused", ["exactly one statement", "DROP"]),
    ("SELECT 1 -- harmless\n; DELETE FROM core.fact_loan", A, "refused", ["exactly one statement"]),
    ("SELECT 1 /* ; DROP TABLE core.fact_loan */", A, OK, []),
    ("ATTACH '/tmp/other.duckdb' AS other", A, "refused", ["ATTACH"]),
    ("DETACH other", DL, "refused", ["DETACH"]),
    ("PRAGMA database_list", A, "refused", ["PRAGMA"]),
    ("SET enable_external_access = true", PO, "refused", ["SET"]),
    ("COPY core.fact_loan TO '/tmp/out.csv'", A, "refused", ["COPY"]),
    ("COPY (SELECT bib_id FROM core.fact_loan) TO '/tmp/out.csv'", A, "refused", ["COPY"]),
    ("INSTALL httpfs", A, "refused", ["INSTALL"]),
    ("LOAD httpfs", A, "refused", ["LOAD"]),
    ("EXPORT DATABASE '/tmp/dump'", PO, "refused", ["EXPORT"]),
    ("CALL pragma_version()", A, "refused", ["CALL"]),
    ("USE core", A, "refused", ["USE"]),
    ("CREATE TABLE core.copy AS SELECT * FROM core.dim_title", PO, "refused", ["CREATE"]),
    ("INSERT INTO core.dim_title (bib_id) VALUES ('x')", PO, "refused", ["INSERT"]),
    ("UPDATE core.dim_title SET title = 'x'", PO, "refused", ["UPDATE"]),
    ("DELETE FROM core.dim_title", PO, "refused", ["DELETE"]),
    ("DESCRIBE core.fact_loan", A, OK, []),
    ("DESCRIBE core.fact_loan", P, "refused", ["layer core", "public"]),
    ("DESCRIBE SELECT patron_pid FROM core.fact_loan", A, "refused", ["describing a query is not allowed"]),
    ("SELECT FROM WHERE", A, "refused", ["could not be parsed"]),
]


@pytest.mark.parametrize("sql, role, expected, words", CASES, ids=[f"{i:02d}-{c[1]}" for i, c in enumerate(CASES)])
def test_guard_decides(sql, role, expected, words):
    decision = guard(sql, role)
    assert decision.allowed == (expected == OK), decision.reason
    for word in words:
        assert word in decision.reason, (word, decision.reason)


def test_hostile_cases_are_many():
    assert len(CASES) >= 40 and sum(c[2] != OK for c in CASES) >= 40


def test_allowed_decisions_name_what_they_touch_and_run_the_regenerated_sql():
    decision = guard("SELECT l.bib_id -- a comment\nFROM core.fact_loan l", "analyst")
    assert decision.allowed
    assert decision.objects == ("core.fact_loan", "core.fact_loan.bib_id")
    assert "comment" not in decision.normalised


def test_unknown_role_is_named():
    with pytest.raises(ValueError, match="unknown role 'librarian'.*analyst"):
        guard("SELECT 1", "librarian")


def test_no_file_or_environment_function_is_on_the_allow_list():
    assert not {f for f in ALLOWED_FUNCTIONS if f.startswith(("read_", "duckdb_", "parquet_", "glob", "getenv",
                                                               "current_setting", "query"))}


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    return published_home(tmp_path_factory, library)


def _digest(settings, sql: str) -> str:
    """The access log's digest of a query: of its text as logged, card numbers and pseudonyms out."""
    return logged_digest(redact_logged(sql, load_library(settings.library_config).card_regex()))


def _log(settings, sql: str) -> list[tuple]:
    con = compute_connection(settings)
    try:
        return con.execute("SELECT role, user_name, outcome, reason, rows_returned, objects, logged_at "
                           "FROM meta.access_log WHERE sql_sha256 = ? ORDER BY logged_at", [_digest(settings, sql)]).fetchall()
    finally:
        con.close()


def test_run_guarded_returns_rows_and_logs_them(home):
    sql = "SELECT zone_code, max(occupancy_peak) AS peak FROM marts.space_utilisation GROUP BY zone_code ORDER BY zone_code"
    result = run_guarded(home, sql, "public", "reading-room-screen")
    assert result.columns == ["zone_code", "peak"] and result.rows
    [(role, user, outcome, reason, rows, objects, logged_at)] = _log(home, sql)
    assert (role, user, outcome, rows) == ("public", "reading-room-screen", "allowed", len(result.rows))
    assert "marts.space_utilisation.occupancy_peak" in objects
    day = logged_at.date().isoformat()
    files = list((home.lake / "meta" / "access_log" / day).glob("*.parquet"))
    assert files and not [f for f in files if f.name.startswith(".")]


def test_refused_query_is_logged_with_its_reason_and_the_os_user(home):
    sql = "SELECT upper(substr(query_normalised, 1, 3)) FROM core.fact_search"
    with pytest.raises(QueryRefused, match="core.fact_search.query_normalised is confidential"):
        run_guarded(home, sql, "analyst")
    [(role, user, outcome, reason, rows, objects, _)] = _log(home, sql)
    assert (role, user, outcome, rows) == ("analyst", getpass.getuser(), "refused", None)
    assert "query_normalised" in reason and "core.fact_search" in objects


def test_published_connection_is_read_only_without_external_access(home):
    from warehouse.guarded import open_role_database
    con = open_role_database(home, "privacy_officer")
    try:
        with pytest.raises(duckdb.Error, match="(?i)read-only|read only"):
            con.execute("CREATE TABLE x AS SELECT 1")
        with pytest.raises(duckdb.Error, match="(?i)external access|disabled"):
            con.execute(f"SELECT * FROM read_parquet('{next(home.lake.rglob('*.parquet'))}')")
        with pytest.raises(duckdb.Error, match="(?i)lock"):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()


def test_cli_sql_with_a_role(home, monkeypatch):
    monkeypatch.setenv("SHUKU_HOME", str(home.home))
    runner = CliRunner()
    ok = runner.invoke(main, ["sql", "--role", "analyst", "--format", "csv",
                              "SELECT title FROM core.dim_title ORDER BY bib_id LIMIT 2"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[0] == "title" and len(ok.stdout.splitlines()) == 3
    refused = runner.invoke(main, ["sql", "--role", "analyst", "SELECT * FROM core.fact_loan"])
    assert refused.exit_code == 1
    assert "core.fact_loan.patron_pid is confidential" in refused.stderr and refused.stdout == ""
    unknown = runner.invoke(main, ["sql", "--role", "dean", "SELECT 1"])
    assert unknown.exit_code == 2 and "unknown role 'dean'" in unknown.stderr


def test_a_card_number_typed_into_a_query_is_not_logged(home):
    sql = "SELECT count(*) AS n FROM core.fact_loan WHERE patron_pid = '2023104512'"
    with pytest.raises(QueryRefused):
        run_guarded(home, sql, "analyst")
    [(_, _, outcome, _, _, _, _)] = _log(home, sql)
    con = compute_connection(home)
    try:
        texts = [t for (t,) in con.execute("SELECT sql_text FROM meta.access_log WHERE sql_sha256 = ?",
                                           [_digest(home, sql)]).fetchall()]
    finally:
        con.close()
    assert outcome == "refused" and texts and all("2023104512" not in t and "<card number>" in t for t in texts)
