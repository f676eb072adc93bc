"""Disciplines: the CLC top classes, LC and Dewey mapped onto them, and dim_title's roll-up."""

from __future__ import annotations

import polars as pl
import pytest

from assets.models.sql_model import check_result_columns, discover_models
from assets.opac.marc import parse
from assets.reference import BUILDERS, class_key, discipline_map_frame
from schemas.model import conform, contract_for
from warehouse.lake.partitions import write_table
from warehouse.lake.views import compute_connection
from warehouse.settings import Settings


def test_the_22_clc_top_classes_with_both_names(library):
    frame = conform(BUILDERS["dim_discipline"](library), contract_for("core.dim_discipline"))
    assert frame["discipline_code"].to_list() == list("ABCDEFGHIJKNOPQRSTUVXZ")
    names = dict(zip(frame["discipline_code"], frame["name_zh"]))
    assert names["A"] == "马克思主义、列宁主义、毛泽东思想、邓小平理论" and names["Z"] == "综合性图书"
    assert frame["name_en"].null_count() == 0


def test_every_mapping_lands_on_a_discipline_once(library):
    frame = conform(discipline_map_frame(library), contract_for("core.discipline_map"))
    assert set(frame["scheme"]) == {"clc", "lc", "dewey"}
    assert frame.select("scheme", "class_prefix").is_duplicated().sum() == 0
    assert set(frame["discipline_code"]) <= set(BUILDERS["dim_discipline"](library)["discipline_code"])
    lookup = {(s, p): d for s, p, d in frame.iter_rows()}
    assert lookup[("lc", "QA")] == "O" and lookup[("lc", "PR")] == "I" and lookup[("dewey", "9")] == "K"
    assert class_key("629.1") == "6291" and lookup[("dewey", "6291")] == "V"


@pytest.fixture
def dim_title(tmp_path, data_dir, library):
    """core.dim_title computed by its SQL model over the pymarc sample records."""
    settings = Settings(tmp_path / "home").ensure()
    records = pl.concat([parse(data_dir / "samples" / name, library).rows
                         for name in ("pymarc__marc.dat", "pymarc__batch.xml")], how="vertical_relaxed")
    first = records.row(0, named=True)
    extra = pl.DataFrame([
        {**first, "bib_id": "clc-1", "clc_class": "TP311.13"},                          # CLC wins over LC
        {**first, "bib_id": "dewey-1", "lc_class": None, "dewey_class": "823.914"},      # Dewey only
        {**first, "bib_id": "clc-bad", "clc_class": "W12"},                             # not a CLC class: LC used
    ], schema=records.schema)
    records = pl.concat([records, extra]).with_columns(source_file=pl.lit("catalogue/catalogue_2025-09-01.mrc"))
    write_table(settings, contract_for("staging.bib_record"), conform(records, contract_for("staging.bib_record")))
    for table in ("dim_discipline", "discipline_map"):
        write_table(settings, contract_for(f"core.{table}"), conform(BUILDERS[table](library), contract_for(f"core.{table}")))
    model = next(m for m in discover_models() if m.qualified_name == "core.dim_title")
    assert "core.discipline_map" in model.upstream()
    con = compute_connection(settings)
    try:
        check_result_columns(con, model)
        frame = con.sql(model.sql).pl()
    finally:
        con.close()
    return {r["bib_id"]: r for r in frame.iter_rows(named=True)}


def test_dim_title_takes_clc_then_lc_then_dewey(dim_title):
    def pick(bib_id):
        r = dim_title[bib_id]
        return r["classification_scheme"], r["class_number"], r["discipline_code"]

    assert pick("clc-1") == ("clc", "TP311.13", "T")
    assert pick("11778504") == ("lc", "QA76.6", "T")          # computing: QA76 beats QA (mathematics)
    assert pick("12149120") == ("lc", "F204.W5", "K")         # The White House: US history
    assert pick("dewey-1") == ("dewey", "823.914", "I")       # English fiction
    assert pick("clc-bad") == ("lc", "QA76.6", "T")
    # A label number in 050 is not an LC class, and the record has no other: no discipline.
    assert pick("5637241") == ("lc", "Atlantic 1259", None)
    assert len(dim_title) == 25
