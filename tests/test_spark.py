"""The same models on Spark: every SQL model transpiled by sqlglot, run by PySpark in local mode
over the Parquet files a real pipeline run wrote, and compared with DuckDB's tables, table by
table. The lake is registered in Spark as it is (Hive partition folders, types inferred by
Spark and checked against the contracts).

PySpark is an optional extra: `make test` installs requirements-spark.lock when `java` is on
PATH. With Java present and PySpark missing, the test fails rather than skipping.
"""

from __future__ import annotations

import datetime as dt
import shutil

import polars as pl
import pytest
import sqlglot
from polars.testing import assert_frame_equal

from assets.models.sql_model import SqlModel, discover_models
from schemas.model import contract_for
from tests.published import pipeline_home
from warehouse.lake.views import compute_connection, has_data
from warehouse.spark import register_lake, spark_schema_problems

MODELS = discover_models()


@pytest.mark.parametrize("dialect", ["spark", "trino"])
def test_every_model_is_portable_and_transpiles(dialect):
    for model in MODELS:
        assert model.portability_problems() == [], model.path
        sql = model.in_dialect(dialect)
        assert [t.sql() for t in sqlglot.parse_one(sql, dialect=dialect).find_all(sqlglot.exp.Table)], model.name


def test_a_model_that_would_not_carry_over_is_refused_with_its_file():
    sql = """with loans as (select * from read_parquet('var/lake/core/fact_loan/*.parquet')),
    counted as (select bib_id, count(*) as loans from loans group by all),
    odd as (select * from fact_loan)
    select * from counted qualify row_number() over (order by loans desc) <= 10"""
    model = SqlModel("marts", "odd_top", MODELS[0].path.with_name("odd_top.sql"), sql)
    with pytest.raises(ValueError, match=r"odd_top\.sql: marts\.odd_top is not portable to spark") as raised:
        model.in_dialect("spark")
    message = str(raised.value)
    for problem in ("reads READ_PARQUET(", "reads fact_loan without its layer", "GROUP BY ALL", "QUALIFY"):
        assert problem in message, message


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("no `java` on PATH: the Spark equivalence test needs a JVM (Debian: openjdk-17-jre-headless)")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.fail("java is on PATH but PySpark is not installed: run `make test` (it installs "
                    "requirements-spark.lock when java is present) or pip install -r requirements-spark.lock")
    session = (SparkSession.builder.master("local[2]").appName("shuku-test")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def lake(tmp_path_factory, library):
    """Fourteen tiny days across a month's end (so month-on-month marts have rows), every stage run."""
    return pipeline_home(tmp_path_factory.mktemp("spark-lake") / "home", library, dt.date(2025, 8, 25), 14)


def _comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in one order whatever the engine: floats rounded far below any figure's precision."""
    frame = frame.with_columns(pl.col(c).round(9) for c, t in frame.schema.items() if t == pl.Float64)
    return frame.sort(frame.columns, nulls_last=True)


@pytest.mark.slow  # a Spark session and a 14-day pipeline: about 100 s
def test_models_on_spark_match_duckdb(spark, lake, tmp_path):
    from assets.models.spark import lake_inputs, run_models_on_spark

    inputs = lake_inputs(MODELS)
    assert {"staging.circulation_event", "staging.counter_usage", "core.dim_gate", "meta.consent"} <= set(inputs)
    assert register_lake(spark, lake, inputs) == inputs

    # The lake as Spark reads it: the same rows and partition keys as DuckDB's views (one query per engine).
    stored = [n for n in inputs if has_data(lake, contract_for(n))]
    parts = {n: contract_for(n).partition_column.name for n in stored if contract_for(n).partition_column}
    census = " UNION ALL ".join(
        [f"SELECT '{n}' AS name, 'rows' AS what, count(*) AS n FROM {n}" for n in stored]
        + [f"SELECT '{n}', 'keys', count(DISTINCT {p}) FROM {n}" for n, p in parts.items()]
        + [f"SELECT '{n}', 'first key', count(*) FROM {n} WHERE {p} = (SELECT min({p}) FROM {n})" for n, p in parts.items()])
    con = compute_connection(lake)
    try:
        expected = {(name, what): n for name, what, n in con.execute(census).fetchall()}
    finally:
        con.close()
    assert {(r[0], r[1]): r[2] for r in spark.sql(census).collect()} == expected
    assert expected[("staging.gate_event", "keys")] == 14 and expected[("staging.counter_usage", "keys")] == 2

    outputs = run_models_on_spark(spark, tmp_path / "spark-out")
    assert set(outputs) == {m.qualified_name for m in MODELS}
    for name, folder in outputs.items():
        contract = contract_for(name)
        assert not spark_schema_problems(contract, spark.table(name).schema), name
        con = compute_connection(lake, [name])
        try:
            duckdb_rows = con.sql(f"SELECT * FROM {name}").pl()
        finally:
            con.close()
        spark_rows = pl.read_parquet(folder / "*.parquet")
        assert spark_rows.schema == duckdb_rows.schema, name
        try:
            assert_frame_equal(_comparable(spark_rows), _comparable(duckdb_rows), check_exact=False)
        except AssertionError as exc:
            raise AssertionError(f"{name}: Spark's rows differ from DuckDB's\n{exc}") from None

    # Not a comparison of empty tables: the facts and the month-on-month marts have rows.
    heights = {name: pl.read_parquet(folder / "*.parquet").height for name, folder in outputs.items()}
    assert all(heights[t] > 0 for t in ("core.fact_loan", "core.fact_gate_event", "core.fact_eresource_access",
                                        "marts.space_utilisation", "marts.key_figures")), heights
    assert heights["marts.circulation_top_monthly"] > 0
    top = pl.read_parquet(outputs["marts.circulation_top_monthly"] / "*.parquet")
    assert top["previous_rank"].is_not_null().any(), "no title ranked in two months: the comparison proves less"


@pytest.mark.slow  # a Spark session and a 14-day pipeline: about 100 s
def test_a_table_spark_reads_differently_from_its_contract_is_named(spark, tmp_path):
    from warehouse.lake.partitions import write_table
    from warehouse.settings import Settings
    from warehouse.spark import register_table

    settings = Settings(tmp_path / "odd").ensure()
    contract = contract_for("staging.item")
    schema = contract.polars_schema() | {"item_number": pl.Utf8}   # text where BIGINT belongs
    write_table(settings, contract, pl.DataFrame([{"item_number": "31", "bib_id": "b1"}], schema=schema))
    with pytest.raises(ValueError, match=r"staging\.item .* reads differently in Spark than its contract item\.odcs\.yaml says"
                                         r":\n  ~ column item_number: contract says BIGINT, Spark reads STRING"):
        register_table(spark, settings, contract)
