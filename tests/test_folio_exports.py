"""FOLIO's own API examples (mod-circulation-storage, mod-inventory-storage) through the parsers:
storage loans keyed by item UUID and resolved through an items export, a single loan, check-ins
as returns and in-house use, requests as holds, and what is refused and why."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from assets import circulation
from assets.circulation import folio, folio_check_ins, folio_requests
from assets.feeds import feed_named
from assets.ingest import ingest_partition
from warehouse.library import LibraryConfigError, load_library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, Settings
from warehouse.textio import LandingFileError

STORAGE = "folio-org-mod-circulation-storage__"
SAMPLE_ITEMS = "folio-org-mod-inventory-storage__sample-items.json"
API_ITEMS = "folio-org-mod-inventory-storage__items_get.json"
POINTS = {"8bb53832-c9fb-47ef-986d-5b1a498a8b30": "EAST", "b0c3c66c-6738-4a61-a51e-8ef354d43e3d": "MED",
          "3a40852d-49fd-4df2-a1f9-6e2641a6e91f": "EAST"}


@pytest.fixture
def folio_library(library):
    return dataclasses.replace(library, folio_service_points=POINTS, folio_default_branch="MAIN")


def _land(folder: Path, data_dir: Path, example: str, name: str, items: str | None = SAMPLE_ITEMS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if items:
        shutil.copy(data_dir / "samples" / items, folder / "folio_items.json")
    shutil.copy(data_dir / "samples" / f"{STORAGE}{example}", folder / name)
    return folder / name


def test_storage_loans_are_keyed_by_item_uuid_and_flagged_when_the_items_export_lacks_them(tmp_path, data_dir,
                                                                                             folio_library):
    result = folio.parse(_land(tmp_path, data_dir, "loans.json", "loans.json", items=API_ITEMS), folio_library)
    assert (result.format, result.metadata["shape"], result.metadata["total_records"]) == ("folio-loans-json",
                                                                                           "collection", 2)
    assert result.rows.select("event_at", "event_type", "branch_code", "item_id", "item_number",
                              "item_resolution", "source_line").rows() == [
        (dt.datetime(2017, 3, 2, 10, 34, 11), "issue", "MAIN", "cb20f34f-b773-462f-a091-b233cc96b9e6", None,
         "not_in_items_export", 1),                                   # 22:34 at UTC-4, no service point: default
        (dt.datetime(2017, 1, 15, 4, 14, 36), "issue", "MAIN", "94838fa2-288a-45c2-ad19-9102f5645127", None,
         "not_in_items_export", 2),
        (dt.datetime(2017, 1, 16, 18, 15, 23), "return", "MAIN", "94838fa2-288a-45c2-ad19-9102f5645127", None,
         "not_in_items_export", 2),
    ]
    assert result.rows["card_number"].to_list() == ["df7f4993-8c14-4a0f-ab63-93975ab01c76"] + [
        "15054e48-03e8-4ed5-810b-7192b86accab"] * 2                  # the user id, pseudonymised at ingest
    assert result.metadata["item_resolution"] == {"not_in_items_export": 2}
    assert result.metadata["renewals_without_time"] == 1 and result.rejects.height == 0
    # No items export at all: loaded the same, flagged as such.
    alone = folio.parse(_land(tmp_path / "other" / "alone", data_dir, "loans.json", "loans.json", items=None), folio_library)
    assert set(alone.rows["item_resolution"]) == {"no_items_export"} and alone.metadata["items_export"] is None


def test_a_single_loan_and_the_items_export_give_barcode_number_and_call_number(tmp_path, data_dir, folio_library):
    nod = folio.parse(_land(tmp_path, data_dir, "sample-loan-nod-item.json", "nod.json"), folio_library)
    assert nod.metadata["shape"] == "single"
    assert nod.rows.select("event_at", "item_number", "item_barcode", "item_resolution").rows() == [
        (dt.datetime(2017, 3, 3, 23, 41, 54), 13, "697685458679", "items_export")]     # HRID item000000000013
    single = folio.parse(_land(tmp_path, data_dir, "loan.json", "loan.json"), folio_library)
    assert single.rows.select("event_at", "branch_code").rows() == [(dt.datetime(2017, 3, 2, 8, 11), "EAST")]
    # A loan of an item with a call number, the items export as gzip JSON lines.
    items = json.loads((data_dir / "samples" / SAMPLE_ITEMS).read_text(encoding="utf-8"))["items"]
    lines = tmp_path / "lines"
    lines.mkdir()
    (lines / "folio_items.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(i) + "\n" for i in items).encode()))
    loan = json.loads((data_dir / "samples" / f"{STORAGE}loan.json").read_text(encoding="utf-8"))
    (lines / "loan.json").write_text(json.dumps({**loan, "itemId": "7212ba6a-8dcf-45a1-be9a-ffaa847c4423"}))
    got = folio.parse(lines / "loan.json", folio_library)
    assert got.rows.select("item_number", "item_barcode", "call_number").rows() == [
        (14, "10101", "TK5105.88815 . A58 2004 FT MEADE")]
    assert got.metadata["items_export"] == "folio_items.jsonl.gz"


def test_a_closed_loan_without_return_date_returns_when_it_was_closed(tmp_path, data_dir, folio_library):
    path = _land(tmp_path, data_dir, "sample-loan-temeraire-item.json", "loan.json")
    result = folio.parse(path, folio_library)
    assert result.rows["event_type"].to_list() == ["issue"] and result.metadata["closed_without_return_time"] == 1
    loan = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**loan, "metadata": {"updatedDate": "2017-03-10T01:00:00Z"}}))
    closed = folio.parse(path, folio_library)
    assert closed.rows.select("event_type", "event_at").rows()[1] == ("return", dt.datetime(2017, 3, 10, 9))


def test_check_ins_are_returns_or_in_house_use(tmp_path, data_dir, folio_library):
    back = folio_check_ins.parse(_land(tmp_path, data_dir, "check-in.json", "one.json"), folio_library)
    assert back.rows.select("event_at", "event_type", "branch_code", "item_id", "card_number").rows() == [
        (dt.datetime(2020, 2, 13, 0, 17, 25), "return", "MED", "6acb77b5-53f5-4005-b5c2-8ce9c52fb891", None)]
    used = folio_check_ins.parse(_land(tmp_path, data_dir, "check-ins.json", "all.json"), folio_library)
    assert used.format == "folio-check-ins-json" and used.rows["event_type"].to_list() == ["localuse"]
    # An item in transit checked in is no circulation event: counted, not loaded, not quarantined.
    doc = json.loads((tmp_path / "all.json").read_text(encoding="utf-8"))
    doc["checkIns"][0]["itemStatusPriorToCheckIn"] = "In transit"
    (tmp_path / "folio_check_ins_2020-02-13.json").write_text(json.dumps(doc))
    transit = circulation.parse(tmp_path / "folio_check_ins_2020-02-13.json", folio_library)
    assert transit.rows.height == 0 and transit.rejects.height == 0 and transit.recognised
    assert transit.metadata["check_ins_not_circulation"] == {"In transit": 1}


def test_requests_are_holds(tmp_path, data_dir, folio_library):
    result = folio_requests.parse(_land(tmp_path, data_dir, "requests.json", "requests.json"), folio_library)
    assert result.rows.select("placed_at", "reserve_id", "request_type", "pickup_branch_code", "item_barcode",
                              "item_resolution", "card_number").rows() == [
        (dt.datetime(2017, 7, 30, 6, 25, 37), "89105c06-dbdb-4aa0-9695-d4d19c733270", "Recall", "MAIN", None,
         "not_in_items_export", "21932a85-bd00-446b-9565-46e0c1a5490b"),
        (dt.datetime(2017, 8, 5, 19, 43, 23), "f5cec279-0da6-4b44-a3df-f49b0903f325", "Hold", None, "269394016504",
         "embedded", "673059465870"),                                  # delivered: no pickup; the requester's barcode
    ]
    one = circulation.parse_holds(_land(tmp_path, data_dir, "request.json", "one.json"), folio_library)
    assert one.rows.select("pickup_branch_code", "instance_id", "call_number", "bib_id").rows() == [
        ("EAST", "86c722c3-2f5e-42e1-bd0e-7ffbbd3b4972", "F16.H37 A2 9001", None)]


@pytest.mark.parametrize("example, parse, hint", [
    ("requests.json", folio.parse, "name it folio_requests_YYYY-MM-DD.json"),
    ("loans.json", folio_check_ins.parse, "name it folio_loans_YYYY-MM-DD.json"),
    ("check-ins.json", folio_requests.parse, "name it folio_check_ins_YYYY-MM-DD.json"),
])
def test_another_answer_under_the_wrong_name_is_refused_naming_the_file(tmp_path, data_dir, folio_library, example,
                                                                       parse, hint):
    path = _land(tmp_path, data_dir, example, "folio_x_2017-01-15.json")
    with pytest.raises(LandingFileError, match=rf"folio_x_2017-01-15.json: .*{hint}"):
        parse(path, folio_library)


def test_an_unknown_structure_is_an_error_not_an_empty_load(tmp_path, folio_library):
    path = tmp_path / "folio_loans_2017-01-15.json"
    path.write_text(json.dumps({"data": [{"id": 1}], "count": 1}))
    with pytest.raises(LandingFileError, match=r"folio_loans_2017-01-15.json: a JSON object with the keys data, count, "
                                               r"not FOLIO loans: expected FOLIO's /loan-storage/loans answer"):
        folio.parse(path, folio_library)
    items = tmp_path / "folio_items.json"
    items.write_text(json.dumps({"holdings": []}))
    path.write_text(json.dumps({"loans": [], "totalRecords": 0}))
    with pytest.raises(LandingFileError, match=r"folio_items.json: .*not FOLIO items"):
        folio.parse(path, folio_library)


def test_ingest_pseudonymises_user_ids_and_quarantines_without_them(tmp_path, data_dir, folio_library):
    settings = Settings(tmp_path / "home").ensure()
    folder = settings.landing / "circulation"
    _land(folder, data_dir, "loans.json", "folio_loans_2017-01-16.json")
    doc = json.loads((data_dir / "samples" / f"{STORAGE}loans.json").read_text(encoding="utf-8"))
    doc["loans"][0]["returnDate"] = "2017-01-16T09:00:00 at noon"     # the renewed loan, returned unreadably
    (folder / "folio_loans_2017-01-16.json").write_text(json.dumps(doc))
    library = dataclasses.replace(folio_library, partitions_start=dt.date(2017, 1, 1))
    outcome = ingest_partition(feed_named("circulation"), "2017-01-16", settings, library,
                               Pseudonymiser.load(settings.secrets_dir), "run-1")
    assert outcome.rows_loaded == {"circulation_event": 1} and outcome.quarantined_by_reason == {"bad_timestamp": 1}
    stored = pl.read_parquet(settings.lake / "staging" / "circulation_event" / "event_date=2017-01-16" / "*.parquet")
    assert stored.select("event_type", "item_id", "item_resolution").rows() == [
        ("return", "94838fa2-288a-45c2-ad19-9102f5645127", "not_in_items_export")]
    assert len(stored["patron_pid"][0]) == 64 and "card_number" not in stored.columns
    quarantined = pl.read_parquet(settings.quarantine / "circulation" / "**" / "*.parquet")
    raw = quarantined["raw_text"][0]
    assert "df7f4993" not in raw and "346ad017" not in raw and '"userId": "(withheld)"' in raw


def test_the_folio_settings_name_branches_of_the_library(tmp_path):
    config = yaml.safe_load(DEFAULT_LIBRARY_CONFIG.read_text(encoding="utf-8"))
    path = tmp_path / "library.yaml"
    path.write_text(yaml.safe_dump({**config, "folio": {"service_points": {"cd1": "EAST"}, "default_branch": "MAIN"}}))
    assert (load_library(path).folio_service_points, load_library(path).folio_default_branch) == ({"cd1": "EAST"}, "MAIN")
    path.write_text(yaml.safe_dump({**config, "folio": {"service_points": {"cd1": "LAW"}}}))
    with pytest.raises(LibraryConfigError, match=r"`folio.service_points\['cd1'\]` = 'LAW' is not a branch code"):
        load_library(path)
    path.write_text(yaml.safe_dump({**config, "folio": {"default": "MAIN"}}))
    with pytest.raises(LibraryConfigError, match="`folio` must be a mapping with keys service_points, default_branch"):
        load_library(path)
