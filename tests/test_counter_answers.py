"""Every official R5.1 sample gives the same rows as TSV and as COUNTER_SUSHI JSON, and every
form a SUSHI answer is stored in (wrapped, bare exceptions, a header alone) is read or refused
by name, never an empty success."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from assets.eresources.counter import parse
from pipelines.cli import main
from warehouse.textio import LandingFileError

VIEWS = ("TR", "TRB2", "TRB3", "TRJ2", "TRJ3", "TRJ4", "DRD1", "DRD2", "PRP1", "IRA1", "IRM1")


def _sample(data_dir, view: str, ext: str):
    return data_dir / "samples" / f"Project-Counter-cop5__{view}_sample_r51.{ext}"


@pytest.mark.parametrize("view", VIEWS)
def test_each_official_sample_gives_the_same_rows_as_tsv_and_json(data_dir, library, view):
    tsv, js = parse(_sample(data_dir, view, "tsv"), library), parse(_sample(data_dir, view, "json"), library)
    assert tsv.rejects.height == js.rejects.height == 0
    assert tsv.rows.height > 0
    order = [c for c in tsv.rows.columns if c != "source_line"]
    assert_frame_equal(tsv.rows.drop("source_line").sort(order), js.rows.drop("source_line").sort(order))
    for key in ("release", "report_id", "reporting_period", "institution_id", "created"):
        assert tsv.metadata[key] == js.metadata[key], key


def test_item_report_json_reads_the_items_under_their_parents(data_dir, library):
    rows = parse(_sample(data_dir, "IRA1", "json"), library).rows
    item11 = rows.filter((pl.col("title") == "Item 11") & (pl.col("metric_type") == "Total_Item_Requests"))
    assert item11.height == 12 and item11.get_column("usage_count").sum() == 2526     # its Reporting_Period_Total
    first = item11.sort("usage_month").row(0, named=True)
    assert (first["usage_month"], first["usage_count"], first["doi"], first["access_type"]) == (
        dt.date(2022, 1, 1), 150, "10.9999/xxxxi11", "Controlled")
    assert first["online_issn"] is None          # the parent's ISSN is the parent's, not the item's


EXCEPTION_1011 = {"Code": 1011, "Message": "Report Queued for Processing", "Data": "retry after 60 s"}
HEADER = {"Release": "5.1", "Report_ID": "TR", "Report_Name": "Title Report", "Created": "2025-10-03T00:00:00Z",
          "Created_By": "CNKI", "Institution_Name": "DUL",
          "Report_Filters": {"Begin_Date": "2025-09-01", "End_Date": "2025-09-30"}}


@pytest.mark.parametrize(("answer", "codes", "report_id"), [
    (EXCEPTION_1011, [1011], None),                                                  # one bare exception
    ([EXCEPTION_1011, {"Code": 3060, "Message": "Invalid Report Filter Value"}], [1011, 3060], None),
    ({"body": EXCEPTION_1011, "response": {"status": 202}}, [1011], None),         # a stored HTTP exchange
    ({"body": json.dumps([EXCEPTION_1011]), "response": {"status": 202}}, [1011], None),   # its body as text
    (json.dumps(EXCEPTION_1011), [1011], None),                                      # the answer's JSON text
    # a header-only answer: without its Report_Header wrapper, with it and no items, with a root Exception
    ({**HEADER, "Exceptions": [{"Code": 3030, "Message": "No Usage Available for Requested Dates"}]}, [3030], "TR"),
    ({"Report_Header": {**HEADER, "Exceptions": [{"Code": 3031, "Message": "Usage Not Ready",
                                                  "Data": "2025-09"}]}}, [3031], "TR"),
    ({"Report_Header": HEADER, "Exception": {"Code": 2090, "Message": "Got response code 404"}}, [2090], "TR"),
    ({"body": {"Report_Header": {**HEADER, "Exceptions": [{"Code": 3030, "Message": "No Usage"}]}, "Report_Items": []},
      "response": {"status": 200}}, [3030], "TR"),
])
def test_answers_without_usage_are_read_with_their_exceptions(tmp_path, library, answer, codes, report_id):
    path = tmp_path / "CNKI_TR_2025-09.json"
    path.write_text(json.dumps(answer), encoding="utf-8")
    result = parse(path, library)
    assert result.rows.height == result.rejects.height == 0
    assert [e["code"] for e in result.metadata["exceptions"]] == codes
    assert result.metadata["report_id"] == report_id
    assert result.recognised


def test_lowercase_filter_names_give_the_period(tmp_path, library):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"Report_Header": {"Release": 5, "Report_ID": "tr", "Report_Filters": [
        {"Name": "end_date", "Value": "2019-12"}, {"Name": "begin_date", "Value": "2019-01"}]},
        "Exception": {"Code": 1030, "Message": "Invalid Customer Id", "Severity": "Fatal"}}))
    meta = parse(path, library).metadata
    assert meta["reporting_period"] == {"begin": "2019-01", "end": "2019-12"}
    assert meta["exceptions"][0]["code"] == 1030


@pytest.mark.parametrize(("answer", "message"), [
    ({"hello": 1}, "JSON without a COUNTER_SUSHI `Report_Header`"),
    ([1, 2], "JSON without a COUNTER_SUSHI `Report_Header`"),
    ({"body": None, "response": {"status": 500}}, "empty body \\(HTTP status 500\\)"),
    ({"Report_Header": HEADER, "Report_Items": {"Title": "x"}}, "`Report_Items` is a dict"),
])
def test_a_structure_not_recognised_is_an_error(tmp_path, library, answer, message):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(answer))
    with pytest.raises(LandingFileError, match=message):
        parse(path, library)


def test_report_items_of_no_known_shape_are_rejected_not_skipped(tmp_path, library):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"Report_Header": HEADER, "Report_Items": [
        {"Title": "A", "Usage": {"2025-09": 3}}, {"Title": "B", "Items": "none"}]}))
    result = parse(path, library)
    assert result.rows.height == 0
    assert result.rejects.get_column("reason").to_list() == ["malformed_line", "malformed_line"]
    assert "not a COUNTER report item" in result.rejects.get_column("detail")[0]


def test_parse_counter_shows_the_header_and_exceptions(tmp_path, data_dir):
    runner = CliRunner()
    sample = _sample(data_dir, "IRA1", "json")
    ok = runner.invoke(main, ["parse", "counter", str(sample)])
    assert ok.exit_code == 0, ok.output
    assert "report: IR_A1 Journal Article Requests, release 5.1" in ok.stderr
    assert "period: 2022-01-01 to 2022-12-31" in ok.stderr and "exceptions: none" in ok.stderr
    assert len(ok.stdout.splitlines()) == 72
    partial = tmp_path / "partial.tsv"
    text = _sample(data_dir, "TRJ2", "tsv").read_text(encoding="utf-8-sig")
    partial.write_text(text.replace("Exceptions\t", "Exceptions\t3040: Partial Data Returned (2022-12)", 1))
    shown = runner.invoke(main, ["parse", "counter", str(partial)])
    assert shown.exit_code == 0 and "exception 3040: Partial Data Returned (2022-12)" in shown.stderr
    queued = tmp_path / "queued.json"
    queued.write_text(json.dumps(EXCEPTION_1011))
    shown = runner.invoke(main, ["parse", "counter", str(queued)])
    assert shown.exit_code == 0 and "exception 1011: Report Queued for Processing" in shown.stderr
    empty = runner.invoke(main, ["parse", "counter", str(data_dir / "samples" / "pycounter__tr_j1.tsv")])
    assert empty.exit_code == 1 and "no usage row and no COUNTER exception" in " ".join(empty.stderr.split())
