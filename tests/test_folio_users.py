"""FOLIO loans and requests name their reader by UUID: resolved to the card's barcode by FOLIO's
own sample users (mod-users sample data) delivered beside them as a `/users` answer, kept and
counted when the export is missing or lacks the reader, and found by erasure either way."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil

import pytest

from assets.circulation import folio, folio_requests
from assets.parsing import CARD_NUMBER
from assets.privacy_assets import landing_rewriter
from warehouse.textio import LandingFileError

STORAGE = "folio-org-mod-circulation-storage__"
USERS = "folio-org-mod-users__sample-users.json"
ITEMS = "folio-org-mod-inventory-storage__sample-items.json"
POINTS = {"8bb53832-c9fb-47ef-986d-5b1a498a8b30": "EAST", "b0c3c66c-6738-4a61-a51e-8ef354d43e3d": "MED",
          "3a40852d-49fd-4df2-a1f9-6e2641a6e91f": "EAST"}
# The sample loans' readers, as mod-users' sample users give their barcodes.
NOD_READER, NOD_BARCODE = "d0fc4228-2e42-49b2-a5b0-9df48897e8c0", "109322966933845"
TEMERAIRE_BARCODE = "724600319597122"


@pytest.fixture
def folio_library(library):
    return dataclasses.replace(library, folio_service_points=POINTS, folio_default_branch="MAIN")


def _land(folder, data_dir, example, users: str | None = "folio_users.json"):
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(data_dir / "samples" / f"{STORAGE}{example}", folder / "answer.json")
    shutil.copy(data_dir / "samples" / ITEMS, folder / "folio_items.json")
    if users:
        shutil.copy(data_dir / "samples" / USERS, folder / users)
    return folder / "answer.json"


@pytest.mark.parametrize("example, barcode", [("sample-loan-nod-item.json", NOD_BARCODE),
                                              ("sample-loan-temeraire-item.json", TEMERAIRE_BARCODE)])
def test_a_loans_user_uuid_becomes_their_cards_barcode(tmp_path, data_dir, folio_library, example, barcode):
    result = folio.parse(_land(tmp_path, data_dir, example), folio_library)
    assert set(result.rows[CARD_NUMBER]) == {barcode}
    assert result.metadata["users_export"] == "folio_users.json"
    assert result.metadata["reader_resolution"] == {"users_export": 1} and result.metadata["readers_unresolved"] == 0


def test_without_a_users_export_the_loan_is_kept_under_its_uuid_and_counted(tmp_path, data_dir, folio_library):
    result = folio.parse(_land(tmp_path, data_dir, "sample-loan-nod-item.json", users=None), folio_library)
    assert result.rows.height == 1 and result.rows[CARD_NUMBER].to_list() == [NOD_READER]
    assert result.metadata["users_export"] is None
    assert result.metadata["reader_resolution"] == {"no_users_export": 1} and result.metadata["readers_unresolved"] == 1


def test_readers_missing_from_the_export_are_kept_and_counted_once_each(tmp_path, data_dir, folio_library):
    # FOLIO's /loan-storage/loans example: two loans whose readers are not among the sample users.
    result = folio.parse(_land(tmp_path, data_dir, "loans.json"), folio_library)
    assert result.rejects.height == 0 and result.rows["source_line"].unique().len() == 2
    assert result.metadata["reader_resolution"] == {"not_in_users_export": 2}
    assert result.metadata["readers_unresolved"] == 2


def test_a_request_with_an_embedded_requester_needs_no_export(tmp_path, data_dir, folio_library):
    result = folio_requests.parse(_land(tmp_path, data_dir, "requests.json"), folio_library)
    assert result.metadata["reader_resolution"] == {"not_in_users_export": 1, "embedded": 1}
    assert "673059465870" in result.rows[CARD_NUMBER].to_list()


def test_users_as_gzip_json_lines_resolve_alike(tmp_path, data_dir, folio_library):
    users = json.loads((data_dir / "samples" / USERS).read_text(encoding="utf-8"))["users"]
    path = _land(tmp_path, data_dir, "sample-loan-nod-item.json", users=None)
    lines = "".join(json.dumps(u, ensure_ascii=False) + "\n" for u in users)
    (tmp_path / "folio_users.jsonl.gz").write_bytes(gzip.compress(lines.encode("utf-8")))
    assert folio.parse(path, folio_library).rows[CARD_NUMBER].to_list() == [NOD_BARCODE]


def test_a_users_file_that_is_no_users_answer_is_refused_naming_it(tmp_path, data_dir, folio_library):
    path = _land(tmp_path, data_dir, "sample-loan-nod-item.json", users=None)
    shutil.copy(data_dir / "samples" / ITEMS, tmp_path / "folio_users.json")
    with pytest.raises(LandingFileError, match=r"folio_users\.json: .*folio_items\.json.*not FOLIO users"):
        folio.parse(path, folio_library)


def test_erasing_a_barcode_drops_the_loans_that_name_only_the_uuid(tmp_path, data_dir, folio_library):
    path = _land(tmp_path, data_dir, "loans.json")
    users = json.loads((data_dir / "samples" / USERS).read_text(encoding="utf-8"))
    users["users"][0]["id"] = "15054e48-03e8-4ed5-810b-7192b86accab"       # the second loan's reader
    (tmp_path / "folio_users.json").write_text(json.dumps(users), encoding="utf-8")
    path = path.rename(tmp_path / "folio_loans_2017-01-16.json")      # erasure knows the file by its name
    data = path.read_bytes()
    new, removed = landing_rewriter(folio_library)(path, data, lambda card: card == NOD_BARCODE)
    assert removed == 1
    assert [loan["userId"] for loan in json.loads(new)["loans"]] == ["df7f4993-8c14-4a0f-ab63-93975ab01c76"]
