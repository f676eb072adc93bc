"""Between runs, the freshness_checks sensor re-evaluates each table's freshness against the library's
today and reports a change as an evaluation of the table's freshness check (tiny library, one day)."""

import datetime as dt

import dagster as dg
import pytest

from assets.resources import ShukuWarehouse
from generator import generate
from pipelines.definitions import DAILY_JOB, build_definitions
from pipelines.freshness import freshness_evaluations
from pipelines.runner import QUIET_LOGS
from schemas.model import contract_for
from warehouse.settings import Settings

DAY = dt.date(2025, 9, 1)
GATE_EVENT = dg.AssetKey(["staging", "gate_event"])


@pytest.mark.slow
def test_a_table_going_stale_between_runs_fails_its_freshness_check(tmp_path, library):
    settings = Settings(tmp_path / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=2, start=DAY, days=1)
    defs = build_definitions(settings, library)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def(DAILY_JOB).execute_in_process(
        instance=instance, partition_key=DAY.isoformat(), run_config=QUIET_LOGS, asset_selection=[GATE_EVENT])
    assert result.success
    sla = contract_for("staging.gate_event").freshness_days
    assert sla is not None

    fresh, state = freshness_evaluations(settings, DAY + dt.timedelta(days=1), {})
    gate = {e.asset_key: e for e in fresh}[GATE_EVENT]
    assert gate.check_name == "freshness" and gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    assert {e.asset_key for e in fresh} == {dg.AssetKey(t.split(".")) for t in state}
    assert "staging.circulation_event" not in state          # not loaded: nothing to measure

    # The same day again: nothing changed, nothing reported.
    assert freshness_evaluations(settings, DAY + dt.timedelta(days=1), state)[0] == []

    later = DAY + dt.timedelta(days=int(sla) + 2)
    stale, state = freshness_evaluations(settings, later, state)
    gate = {e.asset_key: e for e in stale}[GATE_EVENT]
    assert not gate.passed and f"before {later}" in gate.metadata["observed"].value
    assert state["staging.gate_event"] is False

    # Dagster takes the evaluation for the check the ingest asset declares: it is the latest one.
    instance.report_runless_asset_event(gate)
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(GATE_EVENT, "freshness")])[dg.AssetCheckKey(GATE_EVENT, "freshness")]
    assert latest.event.dagster_event.event_specific_data.passed is False
    assert latest.event.dagster_event.event_specific_data.metadata["observed"].value == gate.metadata["observed"].value

    # The registered sensor, on the real clock (a day of 2025 is long stale), from an empty cursor.
    with dg.build_sensor_context(instance=instance, definitions=defs,
                                 resources={"shuku": ShukuWarehouse(home=str(settings.home))}) as context:
        tick = defs.resolve_sensor_def("freshness_checks").evaluate_tick(context)
    reported = {e.asset_key: e.passed for e in tick.asset_events}
    assert reported[GATE_EVENT] is False and tick.cursor
