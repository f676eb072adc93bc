"""A second models run on unchanged inputs keeps the tables it built, and the role databases
copy only what changed; a changed upstream file rebuilds what reads it, and nothing else."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
import polars as pl

from pipelines.definitions import build_definitions
from pipelines.jobs import MODELS_JOB
from pipelines.runner import Stage, run_stage
from tests.published import pipeline_home
from warehouse.lake.files import write_parquet_atomic
from warehouse.lake.paths import PART_FILE


def _models_run(settings) -> dict[str, dict]:
    """Run the models job; the materialisation metadata of every asset, by `layer.table`."""
    instance = dg.DagsterInstance.ephemeral()
    result = run_stage(build_definitions(settings), instance, Stage("models", MODELS_JOB, [], None))
    assert result.success, result.error
    found = {}
    for event in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = event.asset_materialization
        found[".".join(materialization.asset_key.path)] = {k: v.value for k, v in materialization.metadata.items()}
    return found


def _stamp(settings, table: str) -> int:
    return (settings.lake / table.replace(".", "/") / PART_FILE).stat().st_mtime_ns


@pytest.mark.slow
def test_unchanged_inputs_keep_their_tables_and_a_changed_one_rebuilds_its_readers(tmp_path, library):
    settings = pipeline_home(tmp_path / "home", library, dt.date(2025, 9, 1), 2)
    before = {t: _stamp(settings, t) for t in ("core.dim_title", "core.dim_item", "core.fact_loan", "core.dim_date")}

    again = _models_run(settings)
    assert again["core.dim_title"]["rebuilt"] is False and again["core.fact_loan"]["rebuilt"] is False
    assert again["core.dim_date"]["rewritten"] is False
    assert {t: _stamp(settings, t) for t in before} == before
    roles = again["access.role_databases"]["roles"]
    assert roles and all(spec["copied"] < spec["tables"] for spec in roles.values()), roles
    # The checks still ran on the kept tables.
    results = pl.read_parquet(settings.lake / "meta" / "quality_results" / "**" / "*.parquet")
    assert results.filter(pl.col("table_name") == "core.dim_title").height > 0

    # One day of circulation events written again (same rows, a new file): the loans are rebuilt,
    # the catalogue's dimensions are not.
    day = next((settings.lake / "staging" / "circulation_event").glob("*=*"))
    write_parquet_atomic(pl.read_parquet(day / PART_FILE), day / PART_FILE)
    after = _models_run(settings)
    assert after["core.fact_loan"]["rebuilt"] is True
    assert after["core.dim_title"]["rebuilt"] is False and after["core.dim_item"]["rebuilt"] is False
    assert _stamp(settings, "core.dim_title") == before["core.dim_title"]

    # A table changed behind the model's back (here: removed) is built again.
    (settings.lake / "core" / "dim_title" / PART_FILE).unlink()
    assert _models_run(settings)["core.dim_title"]["rebuilt"] is True
    record = json.loads((settings.lake / "meta" / "model_inputs" / "core.dim_title.json").read_text())
    assert set(record) == {"inputs", "output"}


def _day_stamps(settings, table: str) -> dict[str, int]:
    base = settings.lake / table.replace(".", "/")
    return {p.parent.name: p.stat().st_mtime_ns for p in sorted(base.glob(f"*/{PART_FILE}"))}


def _whole_build(settings, table: str) -> pl.DataFrame:
    """The model's SQL run once over every day, as a whole-table build would."""
    from assets.models.sql_model import discover_models
    from warehouse.lake.views import compute_connection

    model = next(m for m in discover_models() if m.qualified_name == table)
    con = compute_connection(settings)
    try:
        return con.sql(model.sql).pl().sort(pl.all())
    finally:
        con.close()


def _lake_rows(settings, table: str) -> pl.DataFrame:
    from warehouse.lake.views import compute_connection

    con = compute_connection(settings, [table])
    try:
        return con.sql(f"SELECT * FROM {table}").pl().sort(pl.all())
    finally:
        con.close()


@pytest.mark.slow
def test_a_day_partitioned_model_rebuilds_only_the_days_whose_inputs_changed(tmp_path, library):
    settings = pipeline_home(tmp_path / "home", library, dt.date(2025, 9, 1), 3)
    fact = "core.fact_eresource_access"
    days = _day_stamps(settings, fact)
    assert list(days) == ["event_date=2025-09-01", "event_date=2025-09-02", "event_date=2025-09-03"]
    assert _lake_rows(settings, fact).equals(_whole_build(settings, fact))

    kept = _models_run(settings)
    assert kept[fact]["rebuilt"] is False and kept[fact]["days_rebuilt"] == 0
    assert kept[fact]["days_checked"] == "2025-09-03"      # the newest day's checks still run
    assert _day_stamps(settings, fact) == days

    # The EZproxy log of 2 September loaded again: that day is rebuilt, and 3 September too (a
    # repeat within 30 seconds of a request just before midnight counts once: it looks back a day).
    source = settings.lake / "staging" / "ezproxy_access" / "event_date=2025-09-02" / PART_FILE
    write_parquet_atomic(pl.read_parquet(source), source)
    gates_before = _day_stamps(settings, "core.fact_gate_event")
    after = _models_run(settings)
    assert after[fact]["rebuilt"] is True and after[fact]["days_rebuilt"] == 2
    assert after[fact]["days_checked"] == "2025-09-02..2025-09-03"
    now = _day_stamps(settings, fact)
    assert now["event_date=2025-09-01"] == days["event_date=2025-09-01"]
    assert now["event_date=2025-09-02"] != days["event_date=2025-09-02"]
    assert _day_stamps(settings, "core.fact_gate_event") == gates_before
    assert after["core.fact_gate_event"]["days_rebuilt"] == 0

    # A request at 00:00:10 repeating one at 23:59:50 the day before counts once, as in a whole build.
    rows = pl.read_parquet(source)
    last = rows.filter(~pl.col("is_static") & ~pl.col("is_failed")).sort("accessed_at").tail(1)
    repeat = last.with_columns(accessed_at=pl.lit(dt.datetime(2025, 9, 3, 0, 0, 0)),
                               source_line=pl.lit(10**6, dtype=pl.Int64))
    moved = last.with_columns(accessed_at=pl.lit(dt.datetime(2025, 9, 2, 23, 59, 50)))
    write_parquet_atomic(pl.concat([rows.filter(pl.col("source_line") != last["source_line"][0]), moved]), source)
    third = settings.lake / "staging" / "ezproxy_access" / "event_date=2025-09-03" / PART_FILE
    write_parquet_atomic(pl.concat([pl.read_parquet(third), repeat.drop("event_date", strict=False)
                                    .select(pl.read_parquet(third).columns)]), third)
    _models_run(settings)
    assert _lake_rows(settings, fact).equals(_whole_build(settings, fact))
    counted = _lake_rows(settings, fact).filter(pl.col("url") == last["url"][0],
                                                pl.col("accessed_at") == dt.datetime(2025, 9, 3, 0, 0, 0))
    assert counted.height == 0

    # A day whose inputs are gone loses its partition; the record names what each day was built from.
    import shutil
    for table in ("ezproxy_access",):
        shutil.rmtree(settings.lake / "staging" / table / "event_date=2025-09-01")
    gone = _models_run(settings)
    assert gone[fact]["days_removed"] == 1
    assert "event_date=2025-09-01" not in _day_stamps(settings, fact)
    assert _lake_rows(settings, fact).equals(_whole_build(settings, fact))
    record = json.loads((settings.lake / "meta" / "model_inputs" / f"{fact}.json").read_text())
    assert sorted(record["days"]) == ["2025-09-02", "2025-09-03"] == sorted(record["outputs"])
