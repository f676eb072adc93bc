"""A second models run on unchanged inputs keeps the tables it built, and the role databases
copy only what changed; a changed upstream file rebuilds what reads it, and nothing else."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import polars as pl

from pipelines.definitions import MODELS_JOB, build_definitions
from pipelines.runner import Stage, run_stage
from tests.published import pipeline_home
from warehouse.storage import PART_FILE, write_parquet_atomic


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
