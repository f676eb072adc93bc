"""The lake: atomic partition writes, re-runs that replace, views typed from contracts."""

import datetime as dt

import duckdb
import polars as pl
import pytest

from schemas.model import load_contracts
from warehouse.lake.partitions import write_partition
from warehouse.lake.paths import TMP_PREFIX, table_dir
from warehouse.lake.views import compute_connection, refresh_warehouse_views
from warehouse.settings import Settings


def _gate_counts(day: dt.date, totals: list[int]) -> pl.DataFrame:
    return pl.DataFrame({
        "counted_at": [dt.datetime.combine(day, dt.time(8, 15 * i)) for i in range(len(totals))],
        "event_date": [day] * len(totals), "sensor_code": ["MAIN-S1"] * len(totals),
        "in_total": totals, "out_total": [0] * len(totals),
        "source_file": ["gates/counter.csv"] * len(totals), "source_line": list(range(2, 2 + len(totals))),
    })


def test_partition_is_replaced_not_appended(tmp_path):
    settings = Settings(tmp_path).ensure()
    contract = load_contracts()["staging.gate_count"]
    day = dt.date(2025, 9, 1)
    write_partition(settings, contract, day.isoformat(), _gate_counts(day, [1, 2, 3]))
    write_partition(settings, contract, day.isoformat(), _gate_counts(day, [5, 6]))
    write_partition(settings, contract, "2025-09-02", _gate_counts(dt.date(2025, 9, 2), [7]))
    files = sorted(p.relative_to(table_dir(settings, contract)) for p in table_dir(settings, contract).rglob("*"))
    assert [str(f) for f in files if f.suffix] == ["event_date=2025-09-01/part-0.parquet",
                                                   "event_date=2025-09-02/part-0.parquet"]
    assert not list(table_dir(settings, contract).rglob(f"{TMP_PREFIX}*"))
    con = compute_connection(settings)
    rows = con.execute("select event_date, in_total from staging.gate_count order by 1, 2").fetchall()
    assert rows == [(day, 5), (day, 6), (dt.date(2025, 9, 2), 7)]


def test_views_are_typed_even_before_any_data(tmp_path):
    settings = Settings(tmp_path).ensure()
    refresh_warehouse_views(settings)
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    described = dict((r[0], r[1]) for r in con.execute("describe staging.circulation_event").fetchall())
    assert described["event_at"] == "TIMESTAMP"
    assert described["item_number"] == "BIGINT"
    assert con.execute("select count(*) from core.fact_loan").fetchone()[0] == 0
    con.close()


@pytest.mark.slow  # a sort three times the memory limit: about 9 s
def test_a_computation_larger_than_its_memory_limit_spills_under_the_home(tmp_path, monkeypatch):
    """DuckDB holds at most SHUKU_DUCKDB_MEMORY and spills the rest into the home's tmp/duckdb
    (never into the working directory), creating the folder itself."""
    monkeypatch.setenv("SHUKU_DUCKDB_MEMORY", "200MB")
    monkeypatch.chdir(tmp_path)
    settings = Settings(tmp_path / "home").ensure()
    con = compute_connection(settings, [])
    try:
        assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] in ("200.0 MB", "190.7 MiB")
        assert con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0] == str(settings.duckdb_temp)
        out = tmp_path / "sorted.parquet"
        # About 600 MB of rows to sort: three times the limit, so it only succeeds by spilling.
        con.execute(f"COPY (SELECT i, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS h FROM range(6000000) t(i) "
                    f"ORDER BY h) TO '{out}'")
    finally:
        con.close()
    assert duckdb.sql(f"SELECT count(*) FROM '{out}'").fetchall()[0][0] == 6_000_000
    assert settings.duckdb_temp.is_dir() and not (tmp_path / ".tmp").exists()
