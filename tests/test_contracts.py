"""Contracts: every file validates, the typed view is right, conformance fails with a readable diff."""

import datetime as dt

import polars as pl
import pytest

from assets.catalog import pipeline_tables
from schemas.model import ContractError, ContractViolation, conform, load_contract, load_contracts


def test_every_contract_loads_and_names_its_table():
    contracts = load_contracts()
    assert len(contracts) >= 30
    for name, contract in contracts.items():
        assert name == f"{contract.layer}.{contract.table}"
        assert contract.columns, name
        for col in contract.columns:
            assert col.description, f"{name}.{col.name} has no description"


def test_every_table_the_pipeline_writes_has_a_contract():
    assert pipeline_tables() == set(load_contracts()), pipeline_tables() ^ set(load_contracts())


def test_card_numbers_are_never_a_staging_column():
    for contract in load_contracts().values():
        assert "card_number" not in contract.column_names, contract.qualified_name


def test_conform_orders_and_casts_losslessly():
    contract = load_contracts()["core.dim_reader_category"]
    frame = pl.DataFrame({"loan_period_days": pl.Series([30], dtype=pl.Int32), "category_code": ["UG"]})
    conformed = conform(frame, contract)
    assert conformed.columns == ["category_code", "loan_period_days"]
    assert conformed.schema["loan_period_days"] == pl.Int64


def test_conform_reports_missing_extra_and_retyped_columns():
    contract = load_contracts()["core.dim_reader_category"]
    frame = pl.DataFrame({"category_code": [dt.date(2025, 1, 1)], "shelf": ["x"]})
    with pytest.raises(ContractViolation) as info:
        conform(frame, contract)
    message = str(info.value)
    assert "- missing column loan_period_days (BIGINT)" in message
    assert "+ unexpected column shelf" in message
    assert "~ column category_code: contract says VARCHAR" in message


def test_invalid_contract_names_file_and_yaml_path(tmp_path):
    bad = tmp_path / "staging" / "broken.odcs.yaml"
    bad.parent.mkdir()
    bad.write_text("apiVersion: v3.1.0\nkind: DataContract\nid: x\nversion: '1'\nstatus: active\n"
                   "schema:\n  - name: broken\n    physicalName: staging.broken\n    properties:\n"
                   "      - name: a\n        logicalType: text\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"broken.odcs.yaml: at `schema\[0\].properties\[0\].logicalType`"):
        load_contract(bad)


def test_a_remembered_contract_loads_as_a_validated_one_and_a_changed_one_is_validated_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SHUKU_CACHE_DIR", str(tmp_path / "cache"))
    source = next(iter(load_contracts().values())).path
    copy = tmp_path / source.parent.name / source.name
    copy.parent.mkdir()
    copy.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    first = load_contract(copy)                      # validated, then remembered
    assert len(list((tmp_path / "cache" / "odcs-valid").iterdir())) == 1
    again = load_contract(copy)                      # from the cache
    assert again.columns == first.columns and again.model == first.model
    copy.write_text(copy.read_text(encoding="utf-8").replace("apiVersion: v3.1.0", "apiVersion: 3"), encoding="utf-8")
    with pytest.raises(ContractError, match="apiVersion"):
        load_contract(copy)
