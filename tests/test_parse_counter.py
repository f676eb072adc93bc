"""COUNTER R5/R5.1 parser on the real samples (TSV, CSV, SUSHI JSON)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
import json

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.eresources.counter import COUNTER_SCHEMA, parse
from warehouse.textio import LandingFileError


def _sample(data_dir, name):
    return data_dir / "samples" / name


def test_r51_tsv_and_json_give_the_same_rows(data_dir, library):
    tsv = parse(_sample(data_dir, "Project-Counter-cop5__TR_sample_r51.tsv"), library)
    js = parse(_sample(data_dir, "Project-Counter-cop5__TR_sample_r51.json"), library)
    assert tsv.rows.schema == pl.Schema(COUNTER_SCHEMA)
    assert tsv.rows.height > 0 and tsv.rejects.height == js.rejects.height == 0
    assert_frame_equal(tsv.rows.drop("source_line"), js.rows.drop("source_line"))
    assert tsv.rows.get_column("source_line").min() == 16     # 13 header rows, a blank, the headings
    assert (tsv.metadata["release"], tsv.metadata["report_id"]) == ("5.1", "TR")
    assert tsv.metadata["reporting_period"] == {"begin": "2022-01-01", "end": "2022-12-31"}
    assert js.metadata["reporting_period"] == tsv.metadata["reporting_period"]
    first = tsv.rows.row(0, named=True)
    assert (first["usage_month"], first["metric_type"], first["usage_count"]) == (dt.date(2022, 1, 1), "Limit_Exceeded", 49)


def test_r5_sushi_json(data_dir, library):
    result = parse(_sample(data_dir, "pycounter__sushi_simple.json"), library)
    got = result.rows.select("usage_month", "metric_type", "usage_count")
    expected = pl.DataFrame({
        "usage_month": [dt.date(2019, 1, 1)] * 2 + [dt.date(2019, 2, 1)] * 2,
        "metric_type": ["Total_Item_Requests", "Unique_Item_Requests"] * 2,
        "usage_count": [14, 9, 16, 12],
    })
    assert_frame_equal(got, expected)
    row = result.rows.row(0, named=True)
    assert (row["release"], row["report_id"], row["title"]) == ("5", "TR_J1", "Journal of fake data")
    assert (row["print_issn"], row["online_issn"], row["doi"], row["proprietary_id"]) == (
        "0737-1764", "1234-5678", "some.fake.doi", "journ.fake.data")
    assert result.rows.get_column("source_line").unique().to_list() == [1]


def test_r5_tsv_with_empty_months_and_header_typo(data_dir, library):
    result = parse(_sample(data_dir, "pycounter__tr_j1.tsv"), library)
    assert result.rows.height == 0 and result.rejects.height == 0     # empty cells are not zeros
    assert result.metadata["report_id"] == "TR_J1"
    assert result.metadata["reporting_period"] == {"begin": "2017-01-01", "end": "2017-06-30"}
    assert result.metadata["item_lines"] == result.metadata["item_lines_without_usage"] == 4
    assert len(result.metadata["months"]) == 6                         # the typo column is not a month


def test_celus_dr_two_digit_years_and_duplicate_row(data_dir, library):
    result = parse(_sample(data_dir, "celus__counter5_table_dr.tsv"), library)
    rows = result.rows
    assert rows.get_column("usage_month").min() == dt.date(2019, 2, 1)
    assert rows.get_column("usage_month").max() == dt.date(2019, 12, 1)
    assert rows.get_column("title").null_count() == rows.height
    assert set(rows.get_column("database")) == {"ARTICLES", "BOOKS"}
    books = rows.filter((pl.col("database") == "BOOKS") & (pl.col("metric_type") == "No_License"))
    # the duplicated line is kept: the ingest dedupes, the parser does not
    assert books.get_column("source_line").unique().len() == 2
    assert books.height == 22
    assert rows.height == 11 * 11


def test_celus_csv(data_dir, library):
    result = parse(_sample(data_dir, "celus__COUNTER_R5_Report_Examples_TR.csv"), library)
    assert result.format == "counter-r5-csv"
    row = result.rows.row(0, named=True)
    assert row["doi"] == "10.1000/xyz123"                  # stray space trimmed
    assert row["platform"] == "PPα"
    assert row["section_type"] == "Article" and row["yop"] == "2016"
    assert result.rows.height == 4 * 6


def _tsv(tmp_path, header_rows: list[str], body: list[str], name="r.tsv") -> object:
    path = tmp_path / name
    path.write_text("\n".join(header_rows + [""] + body) + "\n", encoding="utf-8")
    return path


HEADER = ["Report_Name\tPlatform Report", "Report_ID\tPR", "Release\t5.1", "Institution_Name\tDUL",
          "Institution_ID\t", "Metric_Types\t", "Report_Filters\t", "Report_Attributes\t",
          "Exceptions\t3031: Usage Not Ready for Requested Dates (2025-09); 3040: Partial Data Returned",
          "Reporting_Period\tBegin_Date=2025-09-01; End_Date=2025-09-30", "Created\t2025-10-02",
          "Created_By\tCNKI", "Registry_Record\t"]


def test_exceptions_recorded_and_bad_cells_rejected(tmp_path, library):
    path = _tsv(tmp_path, HEADER, [
        "Platform\tData_Type\tAccess_Method\tMetric_Type\tReporting_Period_Total\tSep-2025",
        "CNKI\tJournal\tRegular\tSearches_Platform\t12\t12",
        "CNKI\tJournal\tRegular\tTotal_Item_Requests\t1\tabc",
        "CNKI\tJournal\tRegular\t\t1\t1",
    ])
    result = parse(path, library)
    assert result.metadata["exceptions"] == [
        {"code": 3031, "message": "Usage Not Ready for Requested Dates", "data": "2025-09"},
        {"code": 3040, "message": "Partial Data Returned", "data": None},
    ]
    assert result.rows.select("platform", "report_id", "metric_type", "usage_count", "source_line").rows() == [
        ("CNKI", "PR", "Searches_Platform", 12, 16)]
    expected = pl.DataFrame({
        "source_line": [17, 18],
        "reason": ["bad_number", "missing_required"],
        "detail": ["Sep-2025: 'abc' is not a whole number", "Metric_Type is empty"],
    })
    assert_frame_equal(result.rejects.drop("raw_text"), expected)


def test_sushi_exception_only_is_recorded_not_raised(tmp_path, library):
    path = tmp_path / "dr.json"
    path.write_text(json.dumps({"Code": 3030, "Severity": "Error",
                                "Message": "No Usage Available for Requested Dates", "Data": "2025-09"}))
    result = parse(path, library)
    assert result.rows.height == 0
    assert result.metadata["exceptions"][0]["code"] == 3030


def test_not_counter_raises(tmp_path, library):
    path = tmp_path / "x.tsv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(LandingFileError, match=r"x\.tsv: no COUNTER report header"):
        parse(path, library)
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(LandingFileError, match=r"x\.json: JSON without a COUNTER_SUSHI `Report_Header`"):
        parse(path, library)



def _generated(tmp_path, library, source):
    """(file path, GeneratedFile) for every file of `source` a tiny generation run wrote."""
    gen = pytest.importorskip("generator")
    if not hasattr(gen, "generate"):
        pytest.skip("generator.generate is not written yet")
    landing = tmp_path / "landing"
    report = gen.generate(landing, library, scale="tiny", seed=42, start=dt.date(2025, 9, 1), days=7)
    files = [(Path(f.path) if Path(f.path).is_absolute() else landing / f.path, f)
             for f in report.files if f.source == source]
    assert files, f"the generator wrote no {source} files"
    return files


def test_generated_counter_reports(tmp_path, library):
    files = _generated(tmp_path, library, "counter")
    assert {p.suffix for p, _ in files} >= {".tsv", ".json"}
    for path, written in files:
        result = parse(path, library)
        assert result.rejects.height == 0, path
        assert result.metadata["release"] == "5.1"
        assert result.metadata["report_id"] in path.name
        if path.suffix == ".tsv":
            assert result.metadata["item_lines"] == written.rows, path
        assert result.rows.get_column("usage_month").dt.month().unique().to_list() in ([], [9])
