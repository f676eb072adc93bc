"""FOLIO's own example records through a real pipeline run: loans, a single loan, check-ins and
requests delivered as day files beside an items export, loaded by `shuku run`'s stages into
staging and on into core.fact_loan and core.fact_hold with their local dates."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from contextlib import closing
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.feeds import feed_named
from pipelines.definitions import build_definitions
from pipelines.jobs import MODELS_JOB
from pipelines.runner import Stage, plan, run_stage
from warehouse.lake.views import compute_connection
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, Settings

# A real run of four stages (about 20 s on two cores).
pytestmark = pytest.mark.slow

CIRCULATION_STORAGE = "folio-org-mod-circulation-storage__"
SAMPLE_ITEMS = "folio-org-mod-inventory-storage__sample-items.json"
SAMPLE_USERS = "folio-org-mod-users__sample-users.json"     # the readers of the two sample loans
# FOLIO's examples name these service points; the library maps them to its branches.
SERVICE_POINTS = {"8bb53832-c9fb-47ef-986d-5b1a498a8b30": "EAST", "b0c3c66c-6738-4a61-a51e-8ef354d43e3d": "MED",
                  "3a40852d-49fd-4df2-a1f9-6e2641a6e91f": "EAST"}
# Landing file → FOLIO example: a day's file holds the records that changed that day (as JSON
# lines where the same example is delivered twice: the same bytes twice would be one duplicate file).
DELIVERIES = {
    "folio_loans_2017-01-15.json": "loans.json",          # loan 2 issued (19:14 at UTC-1 = 04:14 next day, Shanghai)
    "folio_loans_2017-01-16.jsonl": "loans.json",         # loan 2 returned
    "folio_loans_2017-03-02.json": "loan.json",           # a single loan, at a service point the library maps
    "folio_loans_2017-03-03.json": "sample-loan-nod-item.json",        # a single loan, its item in the export
    "folio_loans_2017-03-06.json": "sample-loan-temeraire-item.json",  # closed without returnDate
    "folio_requests_2017-07-30.json": "requests.json",
    "folio_requests_2017-08-05.jsonl": "requests.json",
}


def _deliver(source: Path, target: Path) -> None:
    if target.suffix == ".jsonl":
        doc = json.loads(source.read_text(encoding="utf-8"))
        records = next(v for v in doc.values() if isinstance(v, list))
        target.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        shutil.copy(source, target)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, data_dir):
    home = tmp_path_factory.mktemp("folio") / "home"
    settings = Settings(home).ensure()
    config = yaml.safe_load(DEFAULT_LIBRARY_CONFIG.read_text(encoding="utf-8"))
    config.update(partitions_start="2017-01-01", folio={"service_points": SERVICE_POINTS, "default_branch": "MAIN"})
    (home / "library.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    folder = settings.landing / "circulation" / "folio"
    folder.mkdir(parents=True)
    for name, example in DELIVERIES.items():
        _deliver(data_dir / "samples" / f"{CIRCULATION_STORAGE}{example}", folder / name)
    shutil.copy(data_dir / "samples" / SAMPLE_ITEMS, folder / "folio_items.json")
    shutil.copy(data_dir / "samples" / SAMPLE_USERS, folder / "folio_users.json")
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    feeds = [feed_named("circulation"), feed_named("holds")]
    for first, last in (("2017-01-15", "2017-01-16"), ("2017-03-02", "2017-03-06"), ("2017-07-30", "2017-08-05")):
        [stage] = plan(settings, dt.date.fromisoformat(first), dt.date.fromisoformat(last), feeds, models=False)
        result = run_stage(defs, instance, stage)
        assert result.success, result.error
    facts = [dg.AssetKey(["core", t]) for t in ("dim_item", "dim_reader_category", "fact_loan", "fact_hold")]
    result = run_stage(defs, instance, Stage("facts", MODELS_JOB, facts, None))
    assert result.success, result.error
    return settings


def _query(settings: Settings, sql: str) -> list[tuple]:
    with closing(compute_connection(settings)) as con:
        return con.execute(sql).fetchall()


def test_loans_land_in_fact_loan_keyed_by_item_uuid_with_their_local_dates(loaded):
    got = _query(loaded, "select item_id, item_number, item_barcode, item_resolution, branch_code, issued_at, "
                         "returned_at, renew_count, is_returned from core.fact_loan order by issued_at")
    assert got == [
        ("94838fa2-288a-45c2-ad19-9102f5645127", None, None, "not_in_items_export", "MAIN",
         dt.datetime(2017, 1, 15, 4, 14, 36), dt.datetime(2017, 1, 16, 18, 15, 23), 0, True),
        ("cb20f34f-b773-462f-a091-b233cc96b9e6", None, None, "not_in_items_export", "EAST",
         dt.datetime(2017, 3, 2, 8, 11), None, 0, False),
        ("23f2c8e1-bd5d-4f27-9398-a688c998808a", 13, "697685458679", "items_export", "MAIN",
         dt.datetime(2017, 3, 3, 23, 41, 54), None, 0, False),
        ("23fdb0bc-ab58-442a-b326-577a96204487", 16, "653285216743", "items_export", "MAIN",
         dt.datetime(2017, 3, 6, 2, 32, 31), None, 0, False),
    ]


def test_requests_land_in_fact_hold(loaded):
    got = _query(loaded, "select reserve_id, placed_at, request_type, pickup_branch_code, item_id, item_barcode, "
                         "item_resolution from core.fact_hold order by placed_at")
    assert got == [
        ("89105c06-dbdb-4aa0-9695-d4d19c733270", dt.datetime(2017, 7, 30, 6, 25, 37), "Recall", "MAIN",
         "195efae1-588f-47bd-a181-13a2eb437701", None, "not_in_items_export"),
        ("f5cec279-0da6-4b44-a3df-f49b0903f325", dt.datetime(2017, 8, 5, 19, 43, 23), "Hold", None,
         "3e5d5433-a271-499c-94f4-5f3e4652e537", "269394016504", "embedded"),
    ]


def test_no_reader_uuid_or_name_is_stored_in_the_clear(loaded, data_dir):
    readers = ["df7f4993-8c14-4a0f-ab63-93975ab01c76", "15054e48-03e8-4ed5-810b-7192b86accab",
               "346ad017-dac1-417d-9ed8-0ac7eeb886aa", "21932a85-bd00-446b-9565-46e0c1a5490b", "673059465870", "Jones"]
    for table in ("staging.circulation_event", "staging.hold", "core.fact_loan", "core.fact_hold"):
        text = str(_query(loaded, f"select * from {table}"))
        assert not [r for r in readers if r in text], table
    # A user id is pseudonymised as a card number is: the same reader, the same pid.
    pids = _query(loaded, "select distinct patron_pid from core.fact_loan "
                          "where item_id = '94838fa2-288a-45c2-ad19-9102f5645127'")
    assert len(pids) == 1 and len(pids[0][0]) == 64 and pids[0][0] != hashlib.sha256(readers[1].encode()).hexdigest()


def test_unresolved_items_are_flagged_by_a_warning(loaded):
    flagged = _query(loaded, "select count(*) from staging.circulation_event where item_resolution = 'not_in_items_export'")
    assert flagged == [(3,)]
    checks = _query(loaded, "select table_name, severity, success, unexpected_count from meta.quality_results "
                            "where check_name = 'folio_item_resolved' and not success order by 1")
    assert {(t, sev, n) for t, sev, _, n in checks} >= {("staging.circulation_event", "warn", 1),
                                                       ("staging.hold", "warn", 1)}


def test_a_reader_found_in_the_users_export_has_the_pseudonym_of_their_cards_barcode(loaded):
    from warehouse.pseudonym import Pseudonymiser

    pid = Pseudonymiser.load(loaded.secrets_dir).pid("109322966933845")       # sample user 002's barcode
    got = _query(loaded, "select patron_pid from core.fact_loan where item_id = '23f2c8e1-bd5d-4f27-9398-a688c998808a'")
    assert got == [(pid,)]
    assert "109322966933845" not in str(_query(loaded, "select * from staging.circulation_event"))


def test_erasing_a_folio_reader_leaves_them_nowhere_not_even_in_the_users_export(loaded, tmp_path):
    from assets.privacy_assets import erasure_hooks
    from pipelines.cli_shared import checked_library
    from tests.published import copied_home
    from warehouse.privacy.erasure import erase, verify

    settings = copied_home(loaded, tmp_path / "home")
    barcode, uuid = "109322966933845", "d0fc4228-2e42-49b2-a5b0-9df48897e8c0"    # sample user 002
    users = settings.landing / "circulation" / "folio" / "folio_users.json"
    before = json.loads(users.read_text(encoding="utf-8"))["users"]
    erase(settings, erasure_hooks(checked_library(settings)), card=barcode)
    assert verify(settings, card=barcode) == []
    after = json.loads(users.read_text(encoding="utf-8"))["users"]
    assert [u["id"] for u in after] == [u["id"] for u in before if u["id"] != uuid] and len(after) == len(before) - 1
    assert not any(uuid in p.read_text(encoding="utf-8", errors="replace")
                   for p in (settings.landing / "circulation").rglob("folio_*.json*"))
