"""COUNTER R5/R5.1 parser on the real samples (TSV, CSV, SUSHI JSON)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest
from openpyxl import Workbook
from polars.testing import assert_frame_equal

from assets.eresources.counter import parse
from assets.eresources.counter_rows import COUNTER_SCHEMA
from assets.eresources.reports import report_rows
from assets.feeds import feed_named
from assets.ingest import ingest_partition
from tests.generated import generated_files
from warehouse.lake.files import sha256_of
from warehouse.lake.views import compute_connection
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings
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




def test_generated_counter_reports(tmp_path, library):
    files = generated_files(tmp_path, library, "counter")
    assert {p.suffix for p, _ in files} >= {".tsv", ".json"}
    for path, written in files:
        result = parse(path, library)
        assert result.rejects.height == 0, path
        assert result.metadata["release"] == "5.1"
        assert result.metadata["report_id"] in path.name
        if path.suffix == ".tsv":
            assert result.metadata["item_lines"] == written.rows, path
        assert result.rows.get_column("usage_month").dt.month().unique().to_list() in ([], [9])


# --- the header as meta.counter_reports, and XLSX reports ------------------------------

COP5 = "Project-Counter-cop5__TR_sample_r51"


def _header_row(path, library, key="2022-01"):
    result = parse(path, library)
    return report_rows(f"counter/{key}/{path.name}", key, result, "0" * 64).row(0, named=True)


def test_header_row_is_the_same_from_tsv_and_json(data_dir, library):
    tsv = _header_row(_sample(data_dir, f"{COP5}.tsv"), library)
    js = _header_row(_sample(data_dir, f"{COP5}.json"), library)
    assert {k: v for k, v in tsv.items() if k != "source_file"} == {k: v for k, v in js.items() if k != "source_file"}
    assert tsv == {
        "usage_month": dt.date(2022, 1, 1), "source_file": f"counter/2022-01/{COP5}.tsv", "file_sha256": "0" * 64,
        "release": "5.1", "report_id": "TR", "report_name": "Title Report", "platform": "Platform 1",
        "institution_name": "Sample Institution", "institution_id": "ISNI:1234123412341234",
        "created": "2023-02-15T09:11:12Z", "created_by": "Sample Publisher",
        "reporting_period_begin": "2022-01-01", "reporting_period_end": "2022-12-31", "metric_types": None,
        "report_filters": None,
        "report_attributes": '{"Attributes_To_Show": ["YOP", "Access_Type", "Access_Method"]}',
        "exceptions_count": 0,
    }


def test_header_filters_and_exceptions_in_every_form(tmp_path, data_dir, library):
    r5_tsv = _header_row(_sample(data_dir, "pycounter__tr_j1.tsv"), library)
    assert (r5_tsv["metric_types"], r5_tsv["report_filters"]) == (
        "Total_Item_Requests; Unique_Item_Requests",
        '{"Access_Method": ["Regular"], "Access_Type": ["Controlled"], "Data_Type": ["Journal"]}')
    path = tmp_path / "r5.json"
    path.write_text(json.dumps({"Report_Header": {
        "Release": "5", "Report_ID": "TR_J1", "Institution_ID": [{"Type": "ISNI", "Value": "0000000121"},
                                                                {"Type": "Proprietary", "Value": "pub:77"}],
        "Report_Filters": [{"Name": "Begin_Date", "Value": "2019-01-01"}, {"Name": "End_Date", "Value": "2019-01-31"},
                           {"Name": "Metric_Type", "Value": "Total_Item_Requests|Unique_Item_Requests"},
                           {"Name": "Access_Type", "Value": "Controlled"}],
        "Exceptions": [{"Code": 3040, "Message": "Partial Data Returned"}]}, "Report_Items": []}))
    r5_json = _header_row(path, library)
    assert (r5_json["institution_id"], r5_json["reporting_period_begin"], r5_json["reporting_period_end"]) == (
        "ISNI:0000000121; Proprietary:pub:77", "2019-01-01", "2019-01-31")
    assert (r5_json["metric_types"], r5_json["report_filters"], r5_json["exceptions_count"]) == (
        "Total_Item_Requests; Unique_Item_Requests", '{"Access_Type": ["Controlled"]}', 1)
    bare = tmp_path / "CNKI_DR_2025-09.json"                       # a SUSHI answer that is only an exception
    bare.write_text(json.dumps({"Code": 3030, "Severity": "Error", "Message": "No Usage Available"}))
    row = _header_row(bare, library, "2025-09")
    assert (row["report_id"], row["platform"], row["exceptions_count"]) == (None, "CNKI", 1)


def _xlsx_from_tsv(tsv: Path, path: Path) -> Path:
    """The TSV's cells in a workbook, typed as a spreadsheet would type them: numbers, month dates, blanks."""
    book = Workbook()
    sheet = book.active
    for number, line in enumerate(tsv.read_text(encoding="utf-8-sig").splitlines(), 1):
        for column, text in enumerate(line.split("\t"), 1):
            if text == "":
                continue
            cell = sheet.cell(number, column)
            if text.isdigit() and column > 2:
                cell.value = int(text)
            elif (month := dt.datetime.strptime(text, "%b-%Y") if re.fullmatch(r"[A-Z][a-z]{2}-\d{4}", text) else None):
                cell.value, cell.number_format = month, "mmm-yyyy"
            else:
                cell.value = text
    book.create_sheet("Notes").append(["not read: only the first sheet is the report"])
    book.save(path)
    return path


def test_xlsx_gives_the_same_rows_as_the_tsv(tmp_path, data_dir, library):
    tsv_path = _sample(data_dir, f"{COP5}.tsv")
    tsv = parse(tsv_path, library)
    xlsx = parse(_xlsx_from_tsv(tsv_path, tmp_path / "Platform1_TR_2022-01.xlsx"), library)
    assert xlsx.format == "counter-r51-xlsx" and xlsx.rejects.height == 0
    assert_frame_equal(xlsx.rows, tsv.rows)                        # source_line is the sheet's row number
    for key in ("release", "report_id", "institution_id", "created", "reporting_period", "report_attributes", "months"):
        assert xlsx.metadata[key] == tsv.metadata[key], key


def test_xlsx_and_json_load_with_their_header_rows(tmp_path, data_dir, library):
    settings = Settings(tmp_path / "home").ensure()
    folder = settings.landing / "counter" / "2022-01"
    folder.mkdir(parents=True)
    _xlsx_from_tsv(_sample(data_dir, f"{COP5}.tsv"), folder / "Platform1_TR_2022-01.xlsx")
    shutil.copy(_sample(data_dir, f"{COP5}.json"), folder / "Platform1_TR_2022-01.json")
    feed = feed_named("counter")
    assert [p.suffix for p in feed.files_for(settings.landing, "2022-01")] == [".json", ".xlsx"]
    os.utime(folder / "Platform1_TR_2022-01.xlsx", ns=(1, 1))       # the JSON landed last
    outcome = ingest_partition(feed, "2022-01", settings, library, Pseudonymiser.load(settings.secrets_dir), "run-1")
    assert outcome.meta_rows == {"counter_exceptions": 0, "counter_reports": 1}
    con = compute_connection(settings)
    try:
        rows = con.execute("SELECT source_file, file_sha256, report_id, platform, reporting_period_end, "
                           "exceptions_count FROM meta.counter_reports ORDER BY source_file").fetchall()
        months = con.execute("SELECT DISTINCT usage_month FROM staging.counter_usage").fetchall()
    finally:
        con.close()
    assert [(r[0], r[2:]) for r in rows] == [
        ("counter/2022-01/Platform1_TR_2022-01.json", ("TR", "Platform 1", "2022-12-31", 0))]
    assert [r[1] for r in rows] == [sha256_of(folder / Path(r[0]).name)[0] for r in rows]
    assert months == [(dt.date(2022, 1, 1),)]           # the other months are loaded with their own partitions
    # two deliveries of one report: the newer is loaded, the older superseded, its rows counted as duplicates
    xlsx = next(f for f in outcome.files if f.source_file.endswith(".xlsx"))
    assert (xlsx.file_status, xlsx.duplicate_of) == ("superseded", "counter/2022-01/Platform1_TR_2022-01.json")
    assert xlsx.rows_duplicate["counter_usage"] == outcome.rows_loaded["counter_usage"] > 0


def test_a_zip_that_is_not_a_workbook_is_refused(tmp_path, library):
    path = tmp_path / "Platform1_TR_2022-01.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("report.tsv", "Report_ID\tTR\n")
    with pytest.raises(LandingFileError, match=r"Platform1_TR_2022-01\.xlsx: a ZIP file but not a readable XLSX workbook"):
        parse(path, library)
