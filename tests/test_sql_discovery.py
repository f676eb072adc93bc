"""Finding one's way from SQL alone: SHOW TABLES, DESCRIBE and information_schema through the guard,
per role, against the role's published database; "did you mean" on names the guard does not know."""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from schemas.model import load_contracts
from schemas.roles import load_roles, visible_columns
from tests.published import published_home
from warehouse.guard import guard
from warehouse.guarded import QueryRefused, run_guarded


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    return published_home(tmp_path_factory, library)


def _held(settings, role: str) -> set[tuple[str, str, str]]:
    """(layer, table, column) of every column in the role's published file, as DuckDB lists them."""
    con = duckdb.connect(str(settings.access_dir / f"{role}.duckdb"), read_only=True)
    try:
        return set(con.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                               "WHERE table_catalog = current_database()").fetchall())
    finally:
        con.close()


@pytest.mark.parametrize("role", list(load_roles()))
def test_information_schema_shows_exactly_what_the_role_database_holds(home, role):
    result = run_guarded(home, "SELECT table_schema, table_name, column_name, classification "
                               "FROM information_schema.columns", role, "test")
    shown = {(s, t, c) for s, t, c, _ in result.rows}
    assert shown == _held(home, role)
    clearance = load_roles()[role].level
    levels = ["public", "internal", "confidential", "restricted"]
    assert all(levels.index(k) <= clearance for *_, k in result.rows)


def test_public_sees_only_its_marts(home):
    tables = run_guarded(home, "SHOW TABLES", "public", "test")
    assert tables.columns == ["schema", "name", "description"]
    assert {s for s, _, _ in tables.rows} == {"marts"}
    contracts = load_contracts()
    assert {f"{s}.{n}" for s, n, _ in tables.rows} == {
        name for name, c in contracts.items() if visible_columns("public", c)}
    assert all(d for *_, d in tables.rows)       # every table says what it holds
    with pytest.raises(QueryRefused, match="layer core"):
        run_guarded(home, "DESCRIBE core.dim_title", "public", "test")


def test_describe_lists_the_visible_columns_with_meaning(home):
    result = run_guarded(home, "DESCRIBE core.fact_loan", "analyst", "test")
    assert result.columns == ["column_name", "column_type", "null", "classification", "description"]
    names = [r[0] for r in result.rows]
    assert "bib_id" in names and "patron_pid" not in names
    librarian = [r[0] for r in run_guarded(home, "DESCRIBE core.fact_loan", "data_librarian", "test").rows]
    assert "patron_pid" in librarian and names == [n for n in librarian if n in names]


def test_show_all_tables_names_every_mart_and_its_columns(home):
    result = run_guarded(home, "SHOW ALL TABLES", "analyst", "test")
    assert result.columns[:5] == ["database", "schema", "name", "column_names", "column_types"]
    by_table = {(s, n): list(cols) for _, s, n, cols, _, _ in result.rows}
    held = _held(home, "analyst")
    assert {(s, t) for s, t, _ in held} == set(by_table)
    assert by_table[("marts", "space_utilisation")][:1] and all(
        (s, t, c) in held for (s, t), cols in by_table.items() for c in cols)


@pytest.mark.parametrize("sql, role, words", [
    ("SELECT * FROM marts.utilization", "analyst", "Did you mean marts.space_utilisation"),
    ("SELECT * FROM space_utilisation", "public", "Did you mean marts.space_utilisation"),
    ("SELECT utilization FROM marts.space_utilisation", "public", "Did you mean utilisation?"),
    ("SELECT avg(u.utilization) FROM marts.space_utilisation u", "analyst", "Did you mean utilisation?"),
    ("SHOW TABLES FROM mart", "analyst", "Did you mean marts?"),
    ("DESCRIBE marts.utilisation", "public", "Did you mean marts.space_utilisation"),
])
def test_did_you_mean(sql, role, words):
    decision = guard(sql, role)
    assert not decision.allowed and words in decision.reason
    assert "\n" not in decision.reason


def test_did_you_mean_names_only_what_the_role_may_read():
    public = guard("SELECT * FROM core.dim_titel", "public")
    assert "core.dim_title" not in public.reason and "unknown table core.dim_titel" in public.reason
    analyst = guard("SELECT * FROM core.dim_titel", "analyst")
    assert "Did you mean core.dim_title" in analyst.reason
    hidden = guard("SELECT patron_pd FROM core.fact_loan", "analyst")   # patron_pid is confidential
    assert not hidden.allowed and "patron_pid" not in hidden.reason


def test_cli_discovers_tables(home, monkeypatch):
    monkeypatch.setenv("SHUKU_HOME", str(home.home))
    runner = CliRunner()
    shown = runner.invoke(main, ["sql", "--role", "public", "--format", "csv", "SHOW TABLES"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0] == "schema,name,description" and "marts,space_utilisation," in shown.stdout
    wrong = runner.invoke(main, ["sql", "--role", "public", "SELECT * FROM marts.utilization"])
    assert wrong.exit_code == 1 and "Did you mean marts.space_utilisation" in wrong.stderr
