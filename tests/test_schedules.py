"""The landing sensor asks for exactly the partitions whose files are new or changed; the nightly
schedule loads the day before, in the library's time zone."""

import datetime as dt

import dagster as dg

from assets.resources import ShukuWarehouse
from generator import generate
from pipelines.definitions import build_definitions
from warehouse.settings import Settings


def _evaluate(defs, settings, cursor=None):
    context = dg.build_sensor_context(cursor=cursor, definitions=defs,
                                      resources={"shuku": ShukuWarehouse(home=str(settings.home))})
    result = defs.resolve_sensor_def("landing_sensor").evaluate_tick(context)
    return result.run_requests, result.cursor


def test_landing_sensor_requests_new_and_changed_partitions(tmp_path, library):
    settings = Settings(tmp_path / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=1, start=dt.date(2025, 9, 1), days=2)
    defs = build_definitions(settings, library)

    requests, cursor = _evaluate(defs, settings)
    assert sorted(r.partition_key for r in requests) == ["2025-09-01", "2025-09-02"]
    assert all(dg.AssetKey(["staging", "gate_event"]) in r.asset_selection for r in requests)

    again, cursor = _evaluate(defs, settings, cursor)
    assert again == []

    changed = settings.landing / "circulation" / "statistics_2025-09-02.csv"
    changed.write_bytes(changed.read_bytes() + b"2025-09-02 21:00:00,MAIN,localuse,1,BK,STACKS,,CIR,\n")
    third, _ = _evaluate(defs, settings, cursor)
    assert [r.partition_key for r in third] == ["2025-09-02"]
    assert third[0].asset_selection == [dg.AssetKey(["staging", "circulation_event"])]


def test_nightly_schedule_targets_yesterday_in_library_time(tmp_path, library):
    schedule = build_definitions(Settings(tmp_path).ensure(), library).resolve_schedule_def("nightly_ingest")
    assert schedule.execution_timezone == "Asia/Shanghai"
    assert schedule.cron_schedule == "0 2 * * *"
    when = dt.datetime(2025, 9, 3, 2, 0, tzinfo=library.tz)
    context = dg.build_schedule_context(scheduled_execution_time=when)
    data = schedule.evaluate_tick(context)
    assert [r.partition_key for r in data.run_requests] == ["2025-09-02"]
