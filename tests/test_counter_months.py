"""COUNTER reports of any period land in their own months: a twelve-month report fills twelve
months, the newest delivery of a report wins month by month, an answer without usage is recorded
and replaces nothing, and an unreadable file is quarantined without stopping the others."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from assets.feeds import feed_named
from assets.ingest import ingest_partition
from assets.reference import dim_date_frame
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.jobs import MODELS_JOB
from pipelines.runner import Stage, plan, run_stage
from pipelines.status import refused_files
from warehouse.lake.views import compute_connection
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

TR = "Project-Counter-cop5__TR_sample_r51"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(tmp_path / "home").ensure()


def _query(settings: Settings, sql: str) -> list[tuple]:
    con = compute_connection(settings)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _ingest(settings, library, month: str):
    return ingest_partition(feed_named("counter"), month, settings, library,
                            Pseudonymiser.load(settings.secrets_dir), f"run-{month}")


def _log(settings, month: str) -> dict[str, tuple]:
    rows = _query(settings, "select source_file, file_status, duplicate_of, rows_loaded, rows_duplicate "
                            f"from meta.ingest_log where partition_key = '{month}'")
    return {r[0].split("/")[-1]: r[1:] for r in rows}


def _tsv_rows_per_month(data_dir) -> dict[dt.date, int]:
    from assets.eresources.counter import parse
    rows = parse(data_dir / "samples" / f"{TR}.tsv", None).rows
    return dict(rows.group_by("usage_month").len().iter_rows())


def test_a_year_report_fills_twelve_months_through_shuku_run(tmp_path, data_dir, library, monkeypatch):
    """Before partitions_start (2024-09) and with no configuration change; a broken file beside it is
    quarantined, reported, and does not fail the run."""
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    settings = Settings(home).ensure()
    january = settings.landing / "counter" / "2022-01"
    january.mkdir(parents=True)
    shutil.copy(data_dir / "samples" / f"{TR}.tsv", january / "Platform1_TR_2022-01.tsv")
    march = settings.landing / "counter" / "2022-03"
    march.mkdir(parents=True)
    (march / "Broken_PR_2022-03.tsv").write_bytes(b"\x00\x01 not a report\n")
    result = CliRunner().invoke(main, ["run", "--select", "counter", "--no-models"])
    assert result.exit_code == 0, result.output
    assert "ok COUNTER months 2022-01..2022-12" in " ".join(result.output.split())
    assert "not loaded: landing/counter/2022-03/Broken_PR_2022-03.tsv for 2022-03: unreadable" in result.output
    defs = build_definitions(settings)
    fact = Stage("fact", MODELS_JOB, [dg.AssetKey(["core", "fact_counter_usage"])], None)
    assert run_stage(defs, dg.DagsterInstance.get(), fact).success
    got = dict(_query(settings, "select usage_month, count(*) from core.fact_counter_usage group by 1"))
    assert got == _tsv_rows_per_month(data_dir) and len(got) == 12
    for month in ("2022-01", "2022-06", "2022-12"):
        assert _log(settings, month)["Platform1_TR_2022-01.tsv"][0] == "loaded"
    assert _log(settings, "2022-03")["Broken_PR_2022-03.tsv"][0] == "unreadable"
    quarantined = _query(settings, "select partition_key, reason, detail from quarantine.counter")
    assert [(k, r) for k, r, _ in quarantined] == [("2022-03", "unreadable_file")]
    assert "Broken_PR_2022-03.tsv" in quarantined[0][2]


def _tr_json(data_dir, begin: str, end: str, created: str, factor: int) -> dict:
    doc = json.loads((data_dir / "samples" / f"{TR}.json").read_text(encoding="utf-8"))
    doc["Report_Header"]["Report_Filters"].update({"Begin_Date": f"{begin}-01", "End_Date": f"{end}-28"})
    doc["Report_Header"]["Created"] = created
    for item in doc["Report_Items"]:
        for attrs in item["Attribute_Performance"]:
            for metric, months in attrs["Performance"].items():
                attrs["Performance"][metric] = {m: n * factor for m, n in months.items() if begin <= m <= end}
    return doc


def test_the_newest_delivery_of_a_report_replaces_the_months_it_covers(settings, library, data_dir):
    year = settings.landing / "counter" / "2022-01" / "Platform1_TR_2022-01.json"
    year.parent.mkdir(parents=True)
    year.write_text(json.dumps(_tr_json(data_dir, "2022-01", "2022-12", "2023-02-15T09:11:12Z", 1)))
    again = settings.landing / "counter" / "2022-06" / "Platform1_TR_2022-06.json"      # corrected later
    again.parent.mkdir(parents=True)
    again.write_text(json.dumps(_tr_json(data_dir, "2022-06", "2022-07", "2023-03-01T00:00:00Z", 2)))
    copy = settings.landing / "counter" / "2022-07" / "Platform1_TR_2022-07.json"       # the same bytes again
    copy.parent.mkdir(parents=True)
    shutil.copy(again, copy)
    os.utime(year, ns=(2 * 10**18, 2 * 10**18))   # the year landed last: its older `Created` still loses
    outcomes = {m: _ingest(settings, library, m) for m in ("2022-05", "2022-06", "2022-07")}
    totals = dict(_query(settings, "select strftime(usage_month, '%Y-%m'), sum(usage_count) from staging.counter_usage "
                                   "group by 1"))
    first = _tr_json(data_dir, "2022-05", "2022-07", "", 1)
    expected = {m: sum(v for item in first["Report_Items"] for ap in item["Attribute_Performance"]
                       for months in ap["Performance"].values() for mm, v in months.items() if mm == m)
                for m in ("2022-05", "2022-06", "2022-07")}
    assert totals == {"2022-05": expected["2022-05"], "2022-06": 2 * expected["2022-06"],
                      "2022-07": 2 * expected["2022-07"]}
    assert _log(settings, "2022-05") == {"Platform1_TR_2022-01.json": ("loaded", None, outcomes["2022-05"].rows_loaded[
        "counter_usage"], 0)}
    # the same bytes in two folders are one delivery: loaded once in each month it covers (the copy that
    # landed last), never refused as a duplicate for being in another folder
    for month in ("2022-06", "2022-07"):
        log = _log(settings, month)
        assert log["Platform1_TR_2022-07.json"][0] == "loaded"
        assert log["Platform1_TR_2022-06.json"][:2] == ("duplicate_file", "counter/2022-07/Platform1_TR_2022-07.json")
        assert log["Platform1_TR_2022-01.json"][:2] == ("superseded", "counter/2022-07/Platform1_TR_2022-07.json")
        assert log["Platform1_TR_2022-01.json"][3] == log["Platform1_TR_2022-07.json"][2] > 0
    assert all(o.refused is None and o.written for o in outcomes.values())


QUEUED = {"Code": 1011, "Message": "Report Queued for Processing", "Data": "retry later"}


def test_answers_without_usage_are_recorded_and_replace_nothing(settings, library, data_dir):
    folder = settings.landing / "counter" / "2022-02"
    folder.mkdir(parents=True)
    (folder / "Platform1_TR_2022-02.json").write_text(json.dumps(_tr_json(data_dir, "2022-02", "2022-02", "2023-01-01", 1)))
    (folder / "Platform1_PR_2022-02.json").write_text(json.dumps({"body": QUEUED, "response": {"status": 202}}))
    not_ready = _tr_json(data_dir, "2022-02", "2022-02", "2023-09-01", 1)
    not_ready["Report_Items"] = []
    not_ready["Report_Header"]["Exceptions"] = [{"Code": 3031, "Message": "Usage Not Ready for Requested Dates",
                                                 "Data": "2022-02"}]
    (folder / "Platform1_TR_2022-02-again.json").write_text(json.dumps(not_ready))
    (folder / "Platform1_TR_2022-02-again.json").rename(folder / "Platform1b_TR_2022-02.json")
    outcome = _ingest(settings, library, "2022-02")
    log = _log(settings, "2022-02")
    assert log["Platform1_PR_2022-02.json"][0] == "not_yet" and log["Platform1_PR_2022-02.json"][2] == 0
    assert log["Platform1b_TR_2022-02.json"][0] == "not_yet"
    assert log["Platform1_TR_2022-02.json"][0] == "loaded" and outcome.rows_loaded["counter_usage"] > 0
    codes = _query(settings, "select code, report_id from meta.counter_exceptions order by code")
    assert codes == [(1011, None), (3031, "TR")]
    # `shuku status` lists both as not loaded yet, with what to do
    waiting = {r["file"]: r for r in refused_files(settings)}
    assert set(waiting) == {"counter/2022-02/Platform1_PR_2022-02.json", "counter/2022-02/Platform1b_TR_2022-02.json"}
    assert all(r["status"] == "not_yet" and "deliver it again later" in r["meaning"] for r in waiting.values())
    # partial data is loaded, and recorded in the month it names
    partial = _tr_json(data_dir, "2022-03", "2022-04", "2023-05-01", 1)
    partial["Report_Header"]["Exceptions"] = [{"Code": 3040, "Message": "Partial Data Returned", "Data": "2022-04"}]
    (settings.landing / "counter" / "2022-03").mkdir()
    (settings.landing / "counter" / "2022-03" / "Platform1_TR_2022-03.json").write_text(json.dumps(partial))
    assert _ingest(settings, library, "2022-03").rows_loaded["counter_usage"] > 0
    assert _ingest(settings, library, "2022-04").rows_loaded["counter_usage"] > 0
    by_month = _query(settings, "select strftime(usage_month, '%Y-%m'), code from meta.counter_exceptions "
                                "where code = 3040")
    assert by_month == [("2022-04", 3040)]


def test_months_outside_the_partitions_are_quarantined_once_and_planned_around(settings, library, data_dir):
    doc = _tr_json(data_dir, "2022-01", "2022-02", "2023-01-01", 1)
    item = doc["Report_Items"][0]["Attribute_Performance"][0]["Performance"]
    next(iter(item.values()))["2018-12"] = 5                 # before COUNTER Release 5
    folder = settings.landing / "counter" / "2022-01"
    folder.mkdir(parents=True)
    (folder / "Platform1_TR_2022-01.json").write_text(json.dumps(doc))
    [stage] = plan(settings, None, None, [feed_named("counter")], models=False)
    assert stage.range == ("2022-01", "2022-02")
    _ingest(settings, library, "2022-01")
    _ingest(settings, library, "2022-02")
    wrong = _query(settings, "select partition_key, reason, detail from quarantine.counter")
    assert [(k, r) for k, r, _ in wrong] == [("2022-01", "wrong_partition")] and "2018-12" in wrong[0][2]


def test_dim_date_reaches_back_with_partitions_start(library):
    earlier = dataclasses.replace(library, partitions_start=dt.date(2019, 1, 1))
    frame = dim_date_frame(earlier)
    assert frame.get_column("date_key").min() == dt.date(2019, 1, 1)
    assert frame.filter(pl.col("term_name") == "2024-autumn").height > 0
