"""Data tests of the SQL models, in the manner of dbt's and SQLMesh's unit tests: each model runs on
an in-memory DuckDB over a few hand-written rows of the tables it reads, and must give the rows
its contract and comments say it should, worked out by hand.

One YAML file per model, tests/models/<layer>/<table>.yaml, beside the model's own path:

    model: marts.circulation_top_monthly
    cases:
    - name: what the case shows
      given:                      # rows of the tables the model reads; a table left out is empty,
        core.fact_loan:           # a column left out is null
        - {bib_id: B1, issue_date: 2025-09-02, patron_pid: p1}
      expect:                     # the model's rows, in any order, compared on the columns named
      - {loan_month: 2025-09-01, scope: overall, rank: 1, bib_id: B1}
      xfail: why the model disagrees (a bug found by the case, named in the report)

Every SQL model has its file; its output is checked against its contract's columns and types too.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest
import yaml

from assets.models.sql_model import check_result_columns, discover_models
from schemas.model import contract_for

CASES_DIR = Path(__file__).parent / "models"
MODELS = {m.qualified_name: m for m in discover_models()}


def _case_files() -> list[Path]:
    return sorted(CASES_DIR.glob("*/*.yaml"))


def _cases() -> list:
    params = []
    for path in _case_files():
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in spec["cases"]:
            marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if case.get("xfail") else []
            params.append(pytest.param(spec["model"], case, id=f"{spec['model']}: {case['name']}", marks=marks))
    return params


def _load(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    """Create ``table`` with its contract's columns and types, and insert ``rows``."""
    contract = contract_for(table)
    names = contract.column_names
    unknown = sorted({key for row in rows for key in row} - set(names))
    assert not unknown, f"{table} has no column {', '.join(unknown)} (its contract: {', '.join(names)})"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {contract.layer}")
    con.execute(f"CREATE TABLE {table} ("
                + ", ".join(f'"{c.name}" {c.physical_type}' for c in contract.columns) + ")")
    if rows:
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in names)})",
                        [[row.get(name) for name in names] for row in rows])


def _same(expected, actual) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, float) or isinstance(actual, float):
        return (expected is not None and actual is not None
                and math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-12))
    return expected == actual


def _unmatched(expected: list[dict], actual: list[dict]) -> tuple[list[dict], list[dict]]:
    """The expected rows the model did not give, and the rows it gave that were not expected."""
    left = list(actual)
    missing = []
    for row in expected:
        match = next((i for i, got in enumerate(left) if all(_same(v, got[k]) for k, v in row.items())), None)
        if match is None:
            missing.append(row)
        else:
            left.pop(match)
    return missing, left


@pytest.mark.parametrize("model_name, case", _cases())
def test_model_gives_the_rows_worked_out_by_hand(model_name: str, case: dict):
    model = MODELS[model_name]
    given = case.get("given") or {}
    assert set(given) <= set(model.upstream()), f"{model_name} does not read {sorted(set(given) - set(model.upstream()))}"
    con = duckdb.connect()
    try:
        for table in model.upstream():
            _load(con, table, given.get(table) or [])
        check_result_columns(con, model)
        cursor = con.execute(model.sql)
        names = [d[0] for d in cursor.description]
        actual = [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()
    expected = case["expect"] or []
    columns = {tuple(row) for row in expected}
    assert len(columns) <= 1, f"every expected row names the same columns: {sorted(columns)}"
    compared = list(next(iter(columns), ()))
    assert set(compared) <= set(names), f"{model_name} has no column {sorted(set(compared) - set(names))}"
    missing, unexpected = _unmatched(expected, [{k: row[k] for k in compared} for row in actual])
    assert not missing and not unexpected, (
        f"{model_name}, {case['name']}:\n  expected, not given:\n"
        + "".join(f"    {row}\n{_nearest(row, unexpected)}" for row in missing) + "  given, not expected:\n"
        + "".join(f"    {row}\n" for row in unexpected))


def _nearest(row: dict, candidates: list[dict]) -> str:
    """Where the given row most like ``row`` differs from it, as a line of the failure message."""
    if not candidates:
        return ""
    near = max(candidates, key=lambda got: sum(_same(v, got[k]) for k, v in row.items()))
    return "      nearest given row differs in " + ", ".join(
        f"{k} (given {near[k]!r})" for k, v in row.items() if not _same(v, near[k])) + "\n"


def test_every_sql_model_has_its_data_tests():
    covered = {yaml.safe_load(p.read_text(encoding="utf-8"))["model"]: p for p in _case_files()}
    assert set(MODELS) - set(covered) == set(), "SQL models without tests/models/<layer>/<table>.yaml"
    assert set(covered) - set(MODELS) == set(), "data tests of models that do not exist"
    for name, path in covered.items():
        assert path.relative_to(CASES_DIR).with_suffix("").parts == tuple(name.split(".")), path
