"""The column lineage against a perturbation oracle: for every published column of every core
table and mart made by SQL, the input columns whose perturbation changes it must be exactly the
ones its trace names.

What the trace claims for a column is what `shuku trace` prints for it: the field-level edges of
the column (its values, the CASE conditions that pick them, and for an aggregate what decides
the rows it summarises). Which rows a table has is decided by its dataset-level edges (filters,
joins), shown once for the table. So the oracle compares a column row by row where the table has
a row identity (its contract's primary key, or the grain below: a figure is a cell), over the rows
present before and after; a table with no row identity is compared as a bag of values, and there
whether a row exists counts, so its claim adds the table's dataset-level edges.

Each model runs on an in-memory DuckDB holding its input tables, taken from one tiny home built by
the real pipeline; each input column the SQL names is perturbed several ways (permuted across rows,
shifted by one, a suffix on text, a flipped flag, NULL) and the model runs again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assets.marts_python import PYTHON_MARTS
from assets.models.sql_model import discover_models
from lineage.store import load_events
from lineage.trace import trace
from warehouse.lake.views import compute_connection

from tests.perturbation import FAST, Oracle, PythonOracle, inputs_of, mismatches
from tests.published import copied_home, published_home


def sql_models() -> dict[str, str]:
    """Every published table made by one SQL query (the model files). The co-borrowing pairs are
    asked of one reader, not five, so that two tiny days have some: the SQL is the same but for
    that number."""
    models = {m.qualified_name: m.sql for m in discover_models()}
    support = "where pairs.readers >= 5"
    assert support in models["marts.also_borrowed"]
    models["marts.also_borrowed"] = models["marts.also_borrowed"].replace(support, "where pairs.readers >= 1")
    return models


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    """A copy of the session's tiny two-day home (built once by the real pipeline); its tables as
    polars frames. A copy, because the trace test loads the lineage tables again."""
    settings = copied_home(published_home(tmp_path_factory, library), tmp_path_factory.mktemp("perturbation") / "home")
    models = sql_models()
    tables = sorted({t for sql in models.values() for t in inputs_of(sql)} | {t for m in PYTHON_MARTS for t in m.inputs})
    con = compute_connection(settings, tables)
    try:
        frames = {t: con.sql(f"select * from {t}").pl() for t in tables}
    finally:
        con.close()
    return settings, models, frames


def _cases(fast: bool) -> list:
    names = sorted(m.qualified_name for m in discover_models())
    return [n for n in names if (n in FAST) == fast]


@pytest.mark.parametrize("model", _cases(fast=True))
def test_trace_names_exactly_what_changes_the_figure(home, model):
    _, models, frames = home
    assert mismatches(Oracle(model, models[model], frames)) == []


@pytest.mark.slow
@pytest.mark.parametrize("model", _cases(fast=False))
def test_trace_names_exactly_what_changes_every_column(home, model):
    _, models, frames = home
    assert mismatches(Oracle(model, models[model], frames)) == []


@pytest.mark.slow
@pytest.mark.parametrize("mart", [m.qualified_name for m in PYTHON_MARTS])
def test_declared_lineage_of_the_forecast_names_exactly_what_changes_it(home, mart):
    _, _, frames = home
    assert mismatches(PythonOracle(next(m for m in PYTHON_MARTS if m.qualified_name == mart), frames)) == []


def test_the_loans_figure_traces_to_the_loans_and_their_koha_files_only(home):
    settings, _, _ = home
    load_events(settings)
    result = trace(settings, "marts.key_figures.loans")
    datasets = {hop["dataset"] for hop in result["hops"]}
    assert {"marts.key_figures", "core.fact_loan", "staging.circulation_event"} <= datasets
    assert not datasets & {"core.fact_counter_usage", "core.fact_search", "core.fact_gate_event"}
    loans = next(hop for hop in result["hops"] if hop["dataset"] == "marts.key_figures")
    assert {(i["dataset"], i["column"]) for i in loans["inputs"]} == {("core.fact_loan", "issue_date")}
    files = [Path(f["file"]) for f in result["landing_files"] if f["kind"] == "landing"]
    assert files and all(f.parent.name == "circulation" and f.name.startswith("statistics_") for f in files), files
