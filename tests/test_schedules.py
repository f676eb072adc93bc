"""The landing sensor asks for exactly the partitions whose files are new or changed; the nightly
schedule loads the day before, in the library's time zone; a job per source and a nightly job over
everything, built from asset selections."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from assets.resources import ShukuWarehouse
from generator import generate
from pipelines.definitions import build_definitions
from warehouse.library import load_library
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, Settings


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


def _job_assets(defs, name) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.selected_asset_keys}


def test_a_job_per_source_loads_its_tables_and_rebuilds_what_reads_them(tmp_path, library):
    defs = build_definitions(Settings(tmp_path).ensure(), library)
    gates = _job_assets(defs, "load_gates")
    assert {"staging/gate_event", "staging/gate_count", "core/fact_gate_event", "marts/space_utilisation",
            "access/role_databases"} <= gates
    assert not {"staging/circulation_event", "core/fact_loan", "staging/counter_usage"} & gates
    counter = defs.resolve_job_def("load_counter")
    assert isinstance(counter.partitions_def, dg.MonthlyPartitionsDefinition)
    assert {"staging/counter_usage", "core/fact_counter_usage"} <= _job_assets(defs, "load_counter")
    assert defs.resolve_job_def("load_patrons").partitions_def is None
    assert "core/dim_patron" in _job_assets(defs, "load_patrons")


def test_the_nightly_job_covers_every_asset_but_the_monthly_load_and_the_sweep(tmp_path, library):
    defs = build_definitions(Settings(tmp_path).ensure(), library)
    every = {k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys}
    nightly = _job_assets(defs, "nightly_refresh")
    assert every - nightly == {"staging/counter_usage", "meta/counter_harvest", "meta/retention_sweep"}
    assert defs.resolve_job_def("nightly_refresh").partitions_def.timezone == "Asia/Shanghai"
    assert defs.resolve_schedule_def("nightly_ingest").job_name == "nightly_refresh"


def test_every_schedule_runs_in_the_library_time_zone(tmp_path, library):
    config = tmp_path / "library.yaml"
    config.write_text(DEFAULT_LIBRARY_CONFIG.read_text(encoding="utf-8").replace("Asia/Shanghai", "Europe/Berlin"), encoding="utf-8")
    defs = build_definitions(Settings(tmp_path).ensure(), load_library(config))
    schedules = {n: defs.resolve_schedule_def(n) for n in ("nightly_ingest", "monthly_counter", "monthly_harvest",
                                                             "daily_retention_sweep")}
    assert {s.execution_timezone for s in schedules.values()} == {"Europe/Berlin"}
    counter = schedules["monthly_counter"]
    assert counter.cron_schedule == "0 4 28 * *"
    when = dt.datetime(2025, 10, 28, 4, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    requests = counter.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when)).run_requests
    assert [r.partition_key for r in requests] == ["2025-09"]
