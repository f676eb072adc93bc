"""Per-role published databases: only what each role may see, self-contained, swapped in by rename."""

from __future__ import annotations

import shutil

import duckdb
import polars as pl
import pytest

from schemas.model import load_contracts
from schemas.roles import level, load_roles, visible_columns
from tests.published import copied_home, published_home
from warehouse.access import publish_afresh_next_time, publish_role, role_database
from warehouse.lake.files import write_parquet_atomic
from warehouse.lake.paths import PART_FILE, table_dir
from warehouse.lake.views import compute_connection


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    return published_home(tmp_path_factory, library)


def _catalog(path) -> list[tuple[str, str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                           "WHERE table_catalog = current_database() ORDER BY ALL").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("role", list(load_roles()))
def test_no_column_above_clearance_and_no_layer_outside_the_role(home, role):
    spec = load_roles()[role]
    contracts = load_contracts()
    catalog = _catalog(role_database(home, role))
    assert catalog, role
    for schema, table, column in catalog:
        contract = contracts[f"{schema}.{table}"]
        assert schema in spec.layers, (role, schema, table)
        assert level(contract.column(column).classification) <= spec.level, (role, schema, table, column)
    published = {(s, t) for s, t, _ in catalog}
    expected = {(c.layer, c.table) for c in contracts.values() if visible_columns(role, c)}
    assert published == expected
    for s, t in published:
        wanted = [c.name for c in visible_columns(role, contracts[f"{s}.{t}"])]
        assert [c for s2, t2, c in catalog if (s2, t2) == (s, t)] == sorted(wanted)


def test_public_holds_marts_only_and_analyst_lacks_reader_ids(home):
    assert {s for s, _, _ in _catalog(role_database(home, "public"))} == {"marts"}
    analyst = _catalog(role_database(home, "analyst"))
    assert not [c for c in analyst if c[2] in ("patron_pid", "query_normalised", "department")]
    assert ("core", "fact_loan", "bib_id") in analyst


def test_tables_are_copies_with_the_lake_rows(home):
    con = duckdb.connect(str(role_database(home, "data_librarian")), read_only=True)
    try:
        kinds = {r[0] for r in con.execute("SELECT DISTINCT table_type FROM information_schema.tables "
                                           "WHERE table_catalog = current_database()").fetchall()}
        published = con.execute("SELECT count(*) FROM core.fact_loan").fetchone()[0]
    finally:
        con.close()
    assert kinds == {"BASE TABLE"}
    lake = compute_connection(home)
    try:
        assert published == lake.execute("SELECT count(*) FROM core.fact_loan").fetchone()[0] > 0
    finally:
        lake.close()


def test_republish_swaps_the_file_under_an_open_reader(home):
    path = role_database(home, "public")
    reader = duckdb.connect(str(path), read_only=True)
    try:
        before = reader.execute("SELECT count(*) FROM marts.space_utilisation").fetchone()[0]
        result = publish_role(home, "public")
        assert reader.execute("SELECT count(*) FROM marts.space_utilisation").fetchone()[0] == before
    finally:
        reader.close()
    assert result.tables["marts.space_utilisation"] == before
    assert not list(path.parent.glob(".*tmp*"))


def test_public_marts_suppress_small_cells_and_analysts_see_them(home):
    """The public role's copy of a mart never shows a count from 1 to minCellSize − 1, nor a zone-day
    with a single suppressed cell; the analyst's copy keeps the exact figures."""
    contract = load_contracts()["marts.space_utilisation"]
    counts = [c.name for c in contract.columns if c.min_cell_size]
    public = duckdb.connect(str(role_database(home, "public")), read_only=True)
    analyst = duckdb.connect(str(role_database(home, "analyst")), read_only=True)
    try:
        for column in counts:
            size = contract.column(column).min_cell_size
            small = public.execute(f"SELECT count(*) FROM marts.space_utilisation WHERE {column} BETWEEN 1 AND {size - 1}").fetchone()[0]
            assert small == 0, column
            lone = public.execute(f"SELECT count(*) FROM (SELECT event_date, zone_code, count(*) FILTER (WHERE {column} IS NULL) AS n, "
                                  f"count(*) AS cells FROM marts.space_utilisation GROUP BY ALL) WHERE n = 1 AND cells > 1").fetchone()[0]
            assert lone == 0, column
        exact = analyst.execute("SELECT count(*) FROM marts.space_utilisation WHERE entries BETWEEN 1 AND 4").fetchone()[0]
        hidden = public.execute("SELECT count(*) FROM marts.space_utilisation WHERE entries IS NULL").fetchone()[0]
        assert exact > 0 and hidden >= exact
        rows = [db.execute("SELECT count(*) FROM marts.space_utilisation").fetchone()[0] for db in (public, analyst)]
        assert rows[0] == rows[1]
    finally:
        public.close()
        analyst.close()


def _rows(path, table: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_a_nightly_publish_copies_only_the_tables_whose_lake_files_changed(home, tmp_path):
    copy = copied_home(home, tmp_path / "home")
    fresh = publish_role(copy, "analyst", incremental=False)
    assert set(fresh.copied) == set(fresh.tables) and len(fresh.tables) > 5

    unchanged = publish_role(copy, "analyst")
    assert unchanged.copied == () and unchanged.tables == fresh.tables

    mart = "marts.space_utilisation"
    path = table_dir(copy, load_contracts()[mart]) / PART_FILE
    frame = pl.read_parquet(path)
    write_parquet_atomic(frame.head(len(frame) - 1), path)
    nightly = publish_role(copy, "analyst")
    assert nightly.copied == (mart,)
    assert nightly.tables[mart] == fresh.tables[mart] - 1 == _rows(nightly.path, mart)
    assert {t: n for t, n in nightly.tables.items() if t != mart} == \
        {t: n for t, n in fresh.tables.items() if t != mart}

    # A published file changed behind the record (another client wrote to it) is not reused.
    con = duckdb.connect(str(nightly.path))
    try:
        con.execute("CREATE TABLE main.stray AS SELECT 1 AS x")
    finally:
        con.close()
    rebuilt = publish_role(copy, "analyst")
    assert set(rebuilt.copied) == set(rebuilt.tables)
    assert ("main", "stray") not in {(s, t) for s, t, _ in _catalog(rebuilt.path)}
    assert not list(rebuilt.path.parent.glob(".*tmp*"))

    # After a retention sweep removed rows, every role's file is built afresh.
    assert publish_role(copy, "analyst").copied == ()
    publish_afresh_next_time(copy)
    assert set(publish_role(copy, "analyst").copied) == set(rebuilt.tables)


def test_a_nightly_publish_replaces_only_the_changed_partitions_and_like_roles_share_one_file(home, tmp_path):
    from warehouse.access import publish

    copy = copied_home(home, tmp_path / "home")
    fresh = publish_role(copy, "analyst", incremental=False)
    fact = "core.fact_search"
    contract = load_contracts()[fact]
    assert contract.partition_column is not None and fact in fresh.tables
    days = sorted(table_dir(copy, contract).glob(f"*/{PART_FILE}"))
    assert len(days) == 2
    frame = pl.read_parquet(days[1])
    write_parquet_atomic(frame.head(len(frame) - 3), days[1])
    nightly = publish_role(copy, "analyst")
    assert nightly.copied == (fact,) and nightly.partitions == {fact: 1}
    assert nightly.tables[fact] == fresh.tables[fact] - 3 == _rows(nightly.path, fact)
    con = compute_connection(copy, [fact])
    try:
        lake = con.sql(f"SELECT * FROM {fact}").pl().sort(pl.all())
    finally:
        con.close()
    published = duckdb.connect(str(nightly.path), read_only=True)
    try:
        seen = published.sql(f"SELECT * FROM {fact}").pl()
        assert seen.sort(pl.all()).equals(lake.select(seen.columns).sort(pl.all()))
    finally:
        published.close()
    # A day gone from the lake is gone from the published table.
    shutil.rmtree(days[0].parent)
    after = publish_role(copy, "analyst")
    assert after.partitions == {fact: 1} and after.tables[fact] == len(frame) - 3 == _rows(after.path, fact)

    # The data librarian and the privacy officer see the same tables and columns: one file, linked.
    roles = {p.role: p for p in publish(copy)}
    officer, librarian = roles["privacy_officer"], roles["data_librarian"]
    assert officer.shared_with == "data_librarian" and librarian.shared_with is None
    assert officer.path.stat().st_ino == librarian.path.stat().st_ino
    assert _catalog(officer.path) == _catalog(librarian.path) and officer.tables == librarian.tables
    # The next publish of each still starts from its own record, and a role on its own is built.
    again = publish_role(copy, "privacy_officer")
    assert again.copied == () and again.shared_with is None
