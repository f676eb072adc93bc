"""A file delivered twice is loaded once; COUNTER exceptions are kept per report and shown in status."""

from __future__ import annotations

import json
import shutil

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner

from assets.feeds import feed_named
from assets.ingest import ingest_partition
from pipelines.cli import main
from pipelines.status import counter_exceptions
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

KOHA = ("datetime,branch,type,itemnumber,itemtype,location,cardnumber,ccode,categorycode\n"
        "2025-03-14 09:12:45,MAIN,issue,100234,BK,STACKS,2023104512,CIR,UG\n"
        "2025-03-14 10:00:00,EAST,localuse,100235,BK,REF,,REF,\n"
        "2025-03-14 10:05:00,EAST,bogus,100236,BK,REF,,REF,\n")


@pytest.fixture
def settings(_home):
    return Settings(_home).ensure()


def _ingest(settings, library, feed, key, run):
    return ingest_partition(feed_named(feed), key, settings, library, Pseudonymiser.load(settings.secrets_dir), run)


def _log(settings) -> list[tuple]:
    return duckdb.sql(
        f"select partition_key, source_file, file_status, duplicate_of, rows_read, rows_loaded, rows_quarantined, "
        f"rows_duplicate from read_parquet('{settings.lake}/meta/ingest_log/**/*.parquet', union_by_name = true) "
        "order by ingested_at, source_file").fetchall()


def _stored(settings, day) -> int:
    return pl.read_parquet(settings.lake / "staging" / "circulation_event" / f"event_date={day}" / "part-0.parquet").height


def test_rerunning_a_partition_with_the_same_file_reloads_it(settings, library):
    folder = settings.landing / "circulation"
    folder.mkdir(parents=True)
    (folder / "statistics_2025-03-14.csv").write_text(KOHA, encoding="utf-8")
    for run in ("run-1", "run-2"):
        outcome = _ingest(settings, library, "circulation", "2025-03-14", run)
        assert outcome.duplicate_files == [] and outcome.rows_loaded == {"circulation_event": 2}
    assert _stored(settings, "2025-03-14") == 2
    assert {row[2] for row in _log(settings)} == {"loaded"}


def test_the_same_bytes_under_another_name_are_a_duplicate_delivery(settings, library):
    folder = settings.landing / "circulation"
    (folder / "resent").mkdir(parents=True)
    (folder / "statistics_2025-03-14.csv").write_text(KOHA, encoding="utf-8")
    # Resent into a subfolder (same partition), and misnamed as the next day (another partition).
    shutil.copy(folder / "statistics_2025-03-14.csv", folder / "resent" / "statistics_2025-03-14.csv")
    shutil.copy(folder / "statistics_2025-03-14.csv", folder / "statistics_2025-03-15.csv")
    first = _ingest(settings, library, "circulation", "2025-03-14", "run-1")
    assert first.rows_loaded == {"circulation_event": 2} and first.duplicates == 0
    assert first.duplicate_files == [{"file": "circulation/statistics_2025-03-14.csv",
                                      "duplicate_of": "circulation/resent/statistics_2025-03-14.csv",
                                      "sha256": first.files[0].file_sha256}]
    second = _ingest(settings, library, "circulation", "2025-03-15", "run-2")
    assert second.rows_loaded == {"circulation_event": 0} and second.quarantined_by_reason == {}
    assert [d["duplicate_of"] for d in second.duplicate_files] == ["circulation/resent/statistics_2025-03-14.csv"]
    assert _log(settings) == [
        ("2025-03-14", "circulation/resent/statistics_2025-03-14.csv", "loaded", None, 3, 2, 1, 0),
        ("2025-03-14", "circulation/statistics_2025-03-14.csv", "duplicate_file",
         "circulation/resent/statistics_2025-03-14.csv", 3, 0, 0, 3),
        ("2025-03-15", "circulation/statistics_2025-03-15.csv", "duplicate_file",
         "circulation/resent/statistics_2025-03-14.csv", 3, 0, 0, 3),
    ]
    # Once the first copy is gone, re-running its partition loads the copy left in it.
    (folder / "resent" / "statistics_2025-03-14.csv").unlink()
    again = _ingest(settings, library, "circulation", "2025-03-14", "run-3")
    assert again.duplicate_files == [] and _stored(settings, "2025-03-14") == 2


SUSHI_3030 = {"Code": 3030, "Severity": "Error", "Message": "No Usage Available for Requested Dates",
              "Data": "No usage for 2025-09"}
TR_3040 = {
    "Report_Header": {
        "Report_Name": "Title Report", "Report_ID": "TR", "Release": "5.1", "Institution_Name": "Shuku University",
        "Created": "2025-10-02T08:00:00Z", "Created_By": "JSTOR",
        "Report_Filters": {"Begin_Date": "2025-09-01", "End_Date": "2025-09-30"},
        "Exceptions": [{"Code": 3040, "Message": "Partial Data Returned", "Data": "Usage for 2025-09-30 is missing"}],
    },
    "Report_Items": [{
        "Title": "Journal of Library Data", "Platform": "JSTOR", "Publisher": "JSTOR", "Item_ID": {"Online_ISSN": "1234-5678"},
        "Attribute_Performance": [{"Data_Type": "Journal", "Access_Type": "Controlled", "Access_Method": "Regular",
                                   "Performance": {"Total_Item_Requests": {"2025-09": 7}}}],
    }],
}


def test_counter_exceptions_are_stored_per_month_and_shown_in_status(settings, library):
    folder = settings.landing / "counter" / "2025-09"
    folder.mkdir(parents=True)
    (folder / "CNKI_DR_2025-09.json").write_text(json.dumps(SUSHI_3030), encoding="utf-8")
    (folder / "JSTOR_TR_2025-09.json").write_text(json.dumps(TR_3040), encoding="utf-8")
    outcome = _ingest(settings, library, "counter", "2025-09", "run-1")
    # the bare 3030 answer is no report: its exception is recorded, it has no header row
    assert outcome.rows_loaded == {"counter_usage": 1} and outcome.meta_rows == {"counter_exceptions": 2, "counter_reports": 1}
    stored = pl.read_parquet(settings.lake / "meta" / "counter_exceptions" / "2025-09" / "part-0.parquet")
    assert stored.select("platform", "report_id", "code", "severity", "data").sort("code").rows() == [
        ("CNKI", None, 3030, "Error", "No usage for 2025-09"),
        ("JSTOR", "TR", 3040, "Warning", "Usage for 2025-09-30 is missing")]
    assert counter_exceptions(settings) == [
        {"month": "2025-09", "platform": "CNKI", "report": None, "code": 3030, "severity": "Error",
         "message": "No Usage Available for Requested Dates"},
        {"month": "2025-09", "platform": "JSTOR", "report": "TR", "code": 3040, "severity": "Warning",
         "message": "Partial Data Returned"}]
    result = CliRunner().invoke(main, ["status"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "COUNTER exceptions" in result.output and "3040 Warning" in result.output
    assert "No Usage Available" in result.output
    # The platform sends the full report: the month's exceptions are replaced, not added to.
    (folder / "CNKI_DR_2025-09.json").unlink()
    TR_3040["Report_Header"]["Exceptions"] = []
    (folder / "JSTOR_TR_2025-09.json").write_text(json.dumps(TR_3040), encoding="utf-8")
    assert _ingest(settings, library, "counter", "2025-09", "run-2").meta_rows == {"counter_exceptions": 0, "counter_reports": 1}
    assert counter_exceptions(settings) == []
