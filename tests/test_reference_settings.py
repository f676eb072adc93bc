"""The library's settings as reference tables: the e-resource cost table read from beside the
library config (absent: empty; wrong: one line naming the file, the entry and what to write), the
desk service standard and the sensitive classes as the config states them."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from assets.reference import (CostTableError, build_reference_assets, dim_eresource_cost_frame,
                              dim_sensitive_class_frame, dim_service_standard_frame, source_file)
from assets.resources import ShukuWarehouse
from schemas.model import conform, contract_for
from warehouse.lake.paths import table_file
from warehouse.library import load_library
from warehouse.settings import Settings

CONFIG = Path(__file__).resolve().parents[1] / "config" / "library.yaml"


def _library(tmp_path, costs: str | None = None, **settings):
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    data.update(settings)
    path = tmp_path / "library.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    if costs is not None:
        (tmp_path / "eresource_costs.yaml").write_text(costs, encoding="utf-8")
    return load_library(path)


def test_no_cost_table_is_an_empty_typed_table(tmp_path):
    frame = dim_eresource_cost_frame(_library(tmp_path))
    assert frame.height == 0
    assert conform(frame, contract_for("core.dim_eresource_cost")).columns == ["level", "name", "cost_year", "cost"]


def test_a_library_without_a_cost_table_builds_it_empty_and_traces_it_to_its_config(tmp_path):
    library = _library(tmp_path)
    settings = Settings(tmp_path / "home").ensure()
    asset = next(a for a in build_reference_assets() if dg.AssetKey(["core", "dim_eresource_cost"]) in a.keys)
    result = dg.materialize([asset], instance=dg.DagsterInstance.ephemeral(), resources={
        "shuku": ShukuWarehouse(home=str(settings.home), library_config=str(library.source))})
    assert result.success
    assert pl.read_parquet(table_file(settings, contract_for("core.dim_eresource_cost"))).height == 0
    assert source_file("dim_eresource_cost", library) == library.source


def test_the_cost_table_is_read_as_written(tmp_path):
    library = _library(tmp_path, "costs:\n  - {level: database, name: ' CNKI ', year: 2025, cost: 1200}\n")
    assert dim_eresource_cost_frame(library).rows() == [("database", "CNKI", 2025, 1200.0)]


@pytest.mark.parametrize("entry, named", [
    ("{level: journal, name: X, year: 2025, cost: 1}", "costs[0]`.level = 'journal'; use one of platform, database, title"),
    ("{level: platform, name: '', year: 2025, cost: 1}", "costs[0]`.name is empty"),
    ("{level: platform, name: X, year: 2025, cost: -5}", "cost a number ≥ 0"),
    ("{level: platform, name: X, year: 2025, cost: 1, note: y}", "must be a mapping with level, name, year and cost"),
])
def test_a_wrong_cost_entry_names_the_file_and_the_entry(tmp_path, entry, named):
    library = _library(tmp_path, f"costs:\n  - {entry}\n")
    with pytest.raises(CostTableError) as caught:
        dim_eresource_cost_frame(library)
    assert str(tmp_path / "eresource_costs.yaml") in str(caught.value) and named in str(caught.value)


def test_service_standard_and_sensitive_classes_are_the_configs(tmp_path):
    library = _library(tmp_path, service_standard={"transactions_per_staff_hour": 12, "minimum_staff": 2},
                       sensitive_classes=["b9", "D-", "R"])
    assert dim_service_standard_frame(library).rows() == [(12.0, 150.0, 2)]
    assert dim_sensitive_class_frame(library)["class_prefix"].to_list() == ["B9", "D", "R"]
