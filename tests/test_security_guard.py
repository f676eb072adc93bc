"""Hostile queries beside tests/test_guard.py: each with its exact decision (allowed, or the refusal's
code and words), COLUMNS patterns matched as DuckDB's RE2 matches them, inputs that crashed the
guard, and `* EXCLUDE` of a column the role's database does not hold."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from tests.published import published_home
from warehouse.guard import guard
from warehouse.guarded import QueryRefused, run_guarded
from warehouse.lake.views import compute_connection

A, P, AU, DL = "analyst", "public", "auditor", "data_librarian"
OK = None   # allowed

DEEP = "SELECT " + "(" * 3000 + "1" + ")" * 3000
LONG_SUM = "SELECT 1" + " + 1" * 3000
DEEP_CASE = "SELECT " + "CASE WHEN 1 THEN " * 300 + "1" + " END" * 300

CASES = [
    # COLUMNS patterns: DuckDB's RE2 decides what they select, not Python's re.
    ("SELECT COLUMNS('[[:alpha:]_]+') FROM core.fact_search", A, "clearance", "core.fact_search.patron_pid"),
    ("SELECT COLUMNS('[[:alnum:]]') FROM core.fact_loan", A, "clearance", "core.fact_loan.patron_pid"),
    ("SELECT COLUMNS('(?i)PID') FROM core.fact_search", A, "clearance", "core.fact_search.patron_pid"),
    ("SELECT COLUMNS('(?i)Patron') FROM core.fact_loan", A, "clearance", "core.fact_loan.patron_pid"),
    ("SELECT COLUMNS('\\w+') FROM core.fact_search", A, "clearance", "core.fact_search.patron_pid"),
    ("SELECT COLUMNS('[^x]') FROM core.fact_loan", A, "clearance", "core.fact_loan.patron_pid"),
    ("SELECT COLUMNS('p.d') FROM core.fact_loan", A, "clearance", "core.fact_loan.patron_pid"),
    ("SELECT COLUMNS('_pid$') FROM core.fact_loan", A, "clearance", "core.fact_loan.patron_pid"),
    ("SELECT COLUMNS('(') FROM core.fact_loan", A, "clearance", "core.fact_loan.patron_pid"),   # not RE2: all
    ("SELECT COLUMNS('(?<=patron_)pid') FROM core.fact_search", A, "clearance", "patron_pid"),  # not RE2: all
    ("SELECT COLUMNS('[[:digit:]]') FROM core.fact_loan", A, OK, ""),    # matches nothing: DuckDB says so
    ("SELECT COLUMNS('^bib_id$') FROM core.fact_loan", A, OK, ""),
    ("SELECT COLUMNS('^BIB') FROM core.fact_loan", A, OK, ""),
    ("SELECT COLUMNS('^(bib|loan)_id$') FROM core.fact_loan", A, OK, ""),
    ("SELECT COLUMNS(*) FROM core.fact_loan", A, "clearance", "core.fact_loan.patron_pid"),
    ("SELECT COLUMNS(['bib_id', 'patron_pid']) FROM core.fact_loan", A, "clearance", "patron_pid"),
    ("SELECT COLUMNS(c -> c = 'bib_id') FROM core.fact_loan", A, "clearance", "patron_pid"),
    ("SELECT max(COLUMNS('[[:lower:]]+')) FROM core.fact_search", A, "clearance", "core.fact_search.patron_pid"),
    ("SELECT * FROM core.dim_title WHERE COLUMNS('.*') IS NOT NULL", A, OK, ""),
    ("SELECT count(*) FROM core.fact_loan WHERE COLUMNS('[[:alpha:]_]+') IS NULL", A, "clearance", "patron_pid"),
    # Inputs that crashed the guard: refused, with a reason.
    (DEEP, A, "invalid", "nests too deeply"),
    (DEEP_CASE, A, "invalid", "nests too deeply"),
    (LONG_SUM, A, OK, ""),
    ("SELECT '\ud800'", A, "invalid", "not valid UTF-8 text (position 8)"),
    ("SELECT bib_id FROM core.dim_title WHERE title = '\udcff'", A, "invalid", "not valid UTF-8"),
    ("SELECT '\x00'", A, "invalid", "NUL character at position 8"),
    ("SELECT 1\x00; DROP TABLE core.dim_title", A, "invalid", "NUL character"),
    # EXCLUDE, REPLACE, RENAME and stars.
    ("SELECT * EXCLUDE (patron_pid) FROM core.fact_loan", A, OK, ""),
    ("SELECT l.* EXCLUDE (patron_pid, loan_id) FROM core.fact_loan l", A, OK, ""),
    ("SELECT * EXCLUDE (PATRON_PID) FROM core.fact_loan", A, OK, ""),
    ("SELECT * EXCLUDE (patron_pid) FROM core.fact_loan l JOIN core.fact_search s USING (bib_id)", A, "invalid",
     "Cannot automatically join: bib_id"),
    ("SELECT * EXCLUDE (patron_pid) FROM core.fact_loan l JOIN core.dim_title t ON l.bib_id = t.bib_id", A, OK, ""),
    ("SELECT * RENAME (patron_pid AS p) FROM core.fact_loan", A, "clearance", "core.fact_loan.patron_pid"),
    ("SELECT * REPLACE ('x' AS patron_pid) FROM core.fact_loan", A, OK, ""),     # the value is not read
    ("SELECT * REPLACE (upper(patron_pid) AS patron_pid) FROM core.fact_loan", A, "clearance", "patron_pid"),
    ("SELECT *, * EXCLUDE (patron_pid) FROM core.fact_loan", A, "clearance", "patron_pid"),
    ("SELECT * LIKE '%pid' FROM core.fact_loan", A, "invalid", "`*` inside LIKE is not allowed"),
    ("SELECT struct_extract(t, 'patron_pid') FROM core.fact_loan t", A, "clearance", "table alias"),
    ("SELECT to_json(t) FROM core.fact_loan t", A, "operation", "to_json"),
    # Catalog, files and settings, written otherwise.
    ("SELECT * FROM \"core\".\"fact_loan\"", A, "clearance", "patron_pid"),
    ("SELECT * FROM analyst.main.fact_loan", A, "invalid", "without a database"),
    ("SELECT * FROM core.fact_loan AT (VERSION => 1)", A, "clearance", "patron_pid"),
    ("SELECT * FROM 'lake/core/fact_loan/*.parquet'", A, "invalid", "unknown table"),
    ("SELECT * FROM read_blob('/etc/shadow')", A, "operation", "read_blob"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", A, "operation", "sniff_csv"),
    ("SELECT * FROM duckdb_settings()", A, "operation", "duckdb_settings"),
    ("SELECT * FROM pragma_table_info('core.fact_loan')", A, "operation", "pragma_table_info"),
    ("SELECT * FROM duckdb_secrets()", A, "operation", "duckdb_secrets"),
    ("SELECT getvariable('x')", A, "operation", "getvariable"),
    ("SELECT current_database()", A, "operation", "current_database"),
    ("SELECT * FROM range(10)", A, "operation", "generate_series"),
    ("SELECT * FROM unnest([1, 2])", A, "operation", "function unnest() is not allowed"),
    ("SUMMARIZE core.fact_loan", A, "operation", "SUMMARIZE"),
    ("EXPLAIN SELECT patron_pid FROM core.fact_loan", A, "operation", "EXPLAIN"),
    ("SHOW TABLES", A, OK, ""),
    ("SHOW DATABASES", A, "operation", "SHOW DATABASES is not allowed"),
    ("SHOW TABLES FROM meta", A, "layer", "layer 'meta'"),
    ("SHOW TABLES; ATTACH '/tmp/x.duckdb' AS x", A, "invalid", "exactly one statement"),
    ("DESCRIBE read_parquet('/etc/passwd')", A, "operation", "DESCRIBE takes a table"),
    ("DESCRIBE meta.access_log", A, "layer", "layer meta"),
    ("SELECT * FROM pg_catalog.pg_tables", A, "invalid", "unknown table"),
    ("SELECT * FROM system.information_schema.tables", A, "invalid", "without a database"),
    ("SELECT * FROM duckdb_columns()", A, "operation", "duckdb_columns"),
    ("SELECT c.column_name, f.patron_pid FROM information_schema.columns c, core.fact_loan f", A, "clearance",
     "core.fact_loan.patron_pid"),
    ("PIVOT core.fact_loan ON bib_id", A, "operation", "PIVOT"),
    ("CREATE SECRET s (TYPE s3)", DL, "operation", "CREATE"),
    ("SET VARIABLE x = 1", DL, "operation", "SET"),
    ("VACUUM", DL, "operation", "VACUUM"),
    # Layers, for each role that lacks them.
    ("SELECT sql_text FROM meta.access_log", A, "layer", "layer meta"),
    ("SELECT sql_text FROM meta.access_log", P, "layer", "layer meta"),
    ("SELECT raw_text FROM quarantine.circulation", AU, "layer", "layer quarantine"),
    ("SELECT count(*) FROM staging.search", AU, "layer", "layer staging"),
    ("SELECT * EXCLUDE (patron_pid) FROM core.fact_loan", P, "layer", "layer core"),
]


@pytest.mark.parametrize("sql, role, code, words", CASES, ids=[f"{i:02d}-{c[1]}" for i, c in enumerate(CASES)])
def test_hostile_query(sql, role, code, words):
    decision = guard(sql, role)
    assert decision.allowed == (code is OK), decision.reason
    assert decision.code == code
    assert words in decision.reason


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    return published_home(tmp_path_factory, library)


def _logged(settings, sql: str) -> list[tuple]:
    con = compute_connection(settings)
    try:
        return con.execute("SELECT outcome, reason, sql_text FROM meta.access_log WHERE sql_sha256 = ?",
                           [hashlib.sha256(sql.encode("utf-8", "backslashreplace")).hexdigest()]).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("sql, words", [(DEEP, "nests too deeply"), ("SELECT '\ud800'", "not valid UTF-8"),
                                        ("SELECT '\x00'", "NUL character")], ids=["deep", "surrogate", "nul"])
def test_inputs_that_crashed_the_guard_are_refused_and_logged(home, sql, words):
    with pytest.raises(QueryRefused, match=words):
        run_guarded(home, sql, "analyst")
    [(outcome, reason, text)] = _logged(home, sql)
    assert outcome == "refused" and words in reason


@pytest.mark.parametrize("sql", [
    "SELECT * EXCLUDE (patron_pid) FROM core.fact_loan ORDER BY loan_id LIMIT 3",
    "SELECT l.* EXCLUDE (patron_pid, loan_id) FROM core.fact_loan l ORDER BY ALL LIMIT 3",
    "SELECT * EXCLUDE (patron_pid, query_normalised) FROM core.fact_search ORDER BY ALL LIMIT 3",
])
def test_exclude_of_a_column_the_role_database_lacks_runs(home, sql):
    result = run_guarded(home, sql, "analyst")
    assert result.rows and "patron_pid" not in result.columns and "loan_id" not in result.columns[:0]
    con = duckdb.connect(str(home.access_dir / "analyst.duckdb"), read_only=True)
    try:
        held = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns").fetchall()}
    finally:
        con.close()
    assert "patron_pid" not in held and set(result.columns) <= held


def test_columns_pattern_agrees_with_duckdb_on_the_role_database(home):
    """What the guard allowed, DuckDB runs with the same columns on the analyst's file."""
    result = run_guarded(home, "SELECT COLUMNS('^(bib|loan)_id$') FROM core.fact_loan LIMIT 1", "analyst")
    assert result.columns == ["loan_id", "bib_id"] or sorted(result.columns) == ["bib_id", "loan_id"]
