"""FOLIO loans: events from loan records, the same columns as Koha, both formats in one partition."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets import circulation
from assets.circulation import folio, koha
from assets.feeds import feed_named, source_parser
from assets.ingest import ingest_partition
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings
from warehouse.textio import LandingFileError

KOHA = ("datetime,branch,type,itemnumber,itemtype,location,cardnumber,ccode,categorycode\n"
        "2025-03-14 09:12:45,MAIN,issue,100999,BK,STACKS,2023104599,CIR,UG\n")


def _sample(data_dir) -> Path:
    return data_dir / "folio" / "folio_loans_2025-03-14.json"


def _loan(**fields) -> dict:
    loan = json.loads(_sample(Path(__file__).parent / "data").read_text(encoding="utf-8"))["loans"][0]
    return {**loan, **fields}


def test_loans_become_events_of_the_file_day(data_dir, library):
    result = folio.parse(_sample(data_dir), library)
    assert result.format == "folio-loans-json"
    got = result.rows.select("event_at", "event_type", "branch_code", "item_number", "card_number", "source_line").rows()
    assert got == [
        (dt.datetime(2025, 3, 14, 9, 12, 45), "issue", "MAIN", 100234, "2023104512", 1),        # borrower barcode
        (dt.datetime(2025, 3, 14, 11, 0), "renew", "MAIN", 100240, "3c1e9f0b-5a2d-4c7e-8f10-aa0000000002", 2),
        (dt.datetime(2025, 3, 14, 14, 30), "return", "EAST", 100300, "3c1e9f0b-5a2d-4c7e-8f10-aa0000000003", 3),
        (dt.datetime(2025, 3, 14, 10, 0), "issue", "MAIN", None, "3c1e9f0b-5a2d-4c7e-8f10-aa0000000004", 4),  # bare storage loan
        (dt.datetime(2025, 3, 14, 1, 30), "issue", "EAST", 100301, "3c1e9f0b-5a2d-4c7e-8f10-aa0000000005", 5),  # 17:30 UTC the 13th
    ]
    first = result.rows.row(0, named=True)
    assert (first["item_type"], first["location"], first["category_code"]) == ("BK", "STACKS", "UG")
    # The storage loan names its item by UUID alone, and no items export is beside it: loaded, keyed and flagged.
    assert result.rows.select("item_id", "item_resolution").row(3) == ("b2a6d0f4-8e3c-4b1a-9d22-ff0000000004",
                                                                      "no_items_export")
    assert set(result.rows["item_resolution"].to_list()) == {"embedded", "no_items_export"}
    assert dict(zip(result.rejects["source_line"], result.rejects["reason"])) == {6: "bad_timestamp"}
    # The older loans' issues belong to their own days' files; one of two renewals has no time.
    assert result.metadata["events_on_other_days"] == 2
    assert result.metadata["renewals_without_time"] == 1


def test_same_columns_as_koha(tmp_path, data_dir, library):
    csv = tmp_path / "statistics_2025-03-14.csv"
    csv.write_text(KOHA, encoding="utf-8")
    assert folio.parse(_sample(data_dir), library).rows.schema == koha.parse(csv, library).rows.schema


def test_json_lines_gzip_and_whole_history_without_a_day_in_the_name(tmp_path, data_dir, library):
    loans = json.loads(_sample(data_dir).read_text(encoding="utf-8"))["loans"][:3]
    text = "\n".join([json.dumps(loans[0]), '{"id": "cut off', json.dumps(loans[2])]) + "\n"
    path = tmp_path / "loans.jsonl"
    path.write_bytes(gzip.compress(text.encode()))
    shutil.copy(data_dir / "folio" / folio.SERVICE_POINTS_FILE, tmp_path)
    result = folio.parse(path, library)
    assert result.format == "folio-loans-jsonl"
    # No day in the name: every event of each loan, the return's issue on 28 February included.
    assert result.rows.select("event_date", "event_type", "source_line").rows() == [
        (dt.date(2025, 3, 14), "issue", 1), (dt.date(2025, 2, 28), "issue", 3), (dt.date(2025, 3, 14), "return", 3)]
    assert result.rejects.select("source_line", "reason").rows() == [(2, "malformed_line")]


def test_rejected_loans_leave_reader_names_behind(tmp_path, library):
    path = tmp_path / "folio_loans_2025-03-14.json"
    path.write_text(json.dumps({"loans": [_loan(loanDate="yesterday")], "totalRecords": 1}), encoding="utf-8")
    result = folio.parse(path, library)
    assert result.rejects.select("reason").item() == "bad_timestamp"
    raw = result.rejects["raw_text"][0]
    assert "Reader" not in raw and "borrower" not in raw and "7d3f5c2a" in raw
    assert loan_reader_uuid() not in raw and '"userId": "(withheld)"' in raw


def loan_reader_uuid() -> str:
    return _loan()["userId"]


def test_unknown_service_point_and_patron_group_are_rejected(tmp_path, library):
    loans = [_loan(checkoutServicePoint=None, checkoutServicePointId="00000000-dead-4000-8000-000000000000"),
             _loan(patronGroupAtCheckout={"name": "faculty"})]
    path = tmp_path / "folio_loans_2025-03-14.json"
    path.write_text(json.dumps({"loans": loans, "totalRecords": 2}), encoding="utf-8")
    result = folio.parse(path, library)
    assert result.rejects["reason"].to_list() == ["unknown_code", "unknown_code"]
    assert "deliver folio_service_points.json" in result.rejects["detail"][0]
    assert "folio.service_points" in result.rejects["detail"][0]
    assert "'faculty' is not one of UG" in result.rejects["detail"][1]


def test_one_page_of_a_paged_answer_is_refused(tmp_path, library):
    path = tmp_path / "folio_loans_2025-03-14.json"
    path.write_text(json.dumps({"loans": [_loan()], "totalRecords": 10}), encoding="utf-8")
    with pytest.raises(LandingFileError, match=r"holds 1 of the 10 loans .*limit"):
        folio.parse(path, library)


def test_shuku_parse_tells_koha_from_folio_by_the_bytes(tmp_path, data_dir, library):
    assert source_parser("circulation") == "assets.circulation:parse"
    csv = tmp_path / "anything.txt"
    csv.write_text(KOHA, encoding="utf-8")
    js = tmp_path / "anything_else.txt"
    js.write_bytes(b"\xef\xbb\xbf" + _sample(data_dir).read_bytes())
    assert circulation.parse(csv, library).format == "koha-statistics-csv"
    assert circulation.parse(js, library).format == "folio-loans-json"


def test_feed_recognises_both_formats_by_name():
    feed = feed_named("circulation")
    assert feed.key_of(Path("folio_loans_2025-03-14.jsonl.gz")) == "2025-03-14"
    assert feed.key_of(Path("statistics_2025-03-14.csv")) == "2025-03-14"
    assert feed.key_of(Path(folio.SERVICE_POINTS_FILE)) is None
    assert feed.format_of(Path("folio_loans_2025-03-14.json")).parser == "assets.circulation.folio:parse"


def test_koha_and_folio_files_load_into_one_partition(tmp_path, data_dir, library):
    settings = Settings(tmp_path / "home").ensure()
    folder = settings.landing / "circulation"
    folder.mkdir(parents=True)
    (folder / "statistics_2025-03-14.csv").write_text(KOHA, encoding="utf-8")
    shutil.copy(_sample(data_dir), folder)
    shutil.copy(data_dir / "folio" / folio.SERVICE_POINTS_FILE, folder)
    outcome = ingest_partition(feed_named("circulation"), "2025-03-14", settings, library,
                               Pseudonymiser.load(settings.secrets_dir), "run-1")
    assert outcome.rows_loaded == {"circulation_event": 6}
    assert outcome.quarantined_by_reason == {"bad_timestamp": 1}
    stored = pl.read_parquet(settings.lake / "staging" / "circulation_event" / "event_date=2025-03-14" / "part-0.parquet")
    assert sorted(stored["source_file"].unique()) == ["circulation/folio_loans_2025-03-14.json",
                                                     "circulation/statistics_2025-03-14.csv"]
    assert stored["patron_pid"].str.len_chars().to_list() == [64] * 6
    formats = duckdb.sql(f"select file_format from read_parquet('{settings.lake}/meta/ingest_log/**/*.parquet') "
                         "order by 1").fetchall()
    assert formats == [("folio-loans-json",), ("koha-statistics-csv",)]
