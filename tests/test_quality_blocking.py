"""Blocking checks end to end: a staging or core table corrupted in each way an error-severity rule
catches fails that check in a real Dagster run, the table downstream is not built in the same run,
the result lands in meta.quality_results and `shuku status` shows it (tiny library, 2 days)."""

import dataclasses
import datetime as dt

import dagster as dg
import pytest
from click.testing import CliRunner

from assets.feeds import FEEDS
from generator import generate
from pipelines import cli_shared
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.jobs import MODELS_JOB
from pipelines.runner import QUIET_LOGS, Stage, dagster_instance, plan, run_stage
from schemas.model import contract_for
from tests.published import copied_home
from warehouse.lake.partitions import write_partition
from warehouse.lake.views import compute_connection
from warehouse.settings import Settings

START = dt.date(2025, 9, 1)
DAY = "2025-09-02"


@dataclasses.dataclass(frozen=True)
class Case:
    check: str             # the check that must fail, on ``table``
    table: str             # the corrupted table (or, for a core rule, the staging table feeding it)
    corrupt: str           # SQL over the clean rows of ``table`` (as ``clean``) giving the corrupted rows
    checked: str           # the table whose check fails
    downstream: str        # an asset that reads ``checked`` and must not be built in the same run
    key: str = DAY         # the partition of ``table`` corrupted (a month's first day for COUNTER)
    names: str = ""        # what the check's sample must name (the day, platform or zone)


FIRST_ROWS = "row_number() OVER () <= 3"
CASES = {
    "not_null": Case("not_null__direction", "staging.gate_event",
                     f"SELECT * REPLACE (CASE WHEN {FIRST_ROWS} THEN NULL ELSE direction END AS direction) FROM clean",
                     "staging.gate_event", "core.fact_gate_event"),
    "in_set": Case("in_set__direction", "staging.gate_event",
                   f"SELECT * REPLACE (CASE WHEN {FIRST_ROWS} THEN 'SIDEWAYS' ELSE direction END AS direction) FROM clean",
                   "staging.gate_event", "core.fact_gate_event"),
    "unique": Case("unique__item_number", "staging.item",
                   "SELECT * FROM clean UNION ALL (SELECT * FROM clean ORDER BY item_number LIMIT 3)",
                   "staging.item", "core.dim_item"),
    "between": Case("between__hit_count", "staging.search",
                    f"SELECT * REPLACE (CASE WHEN {FIRST_ROWS} THEN -1 ELSE hit_count END AS hit_count) FROM clean",
                    "staging.search", "core.fact_search"),
    "regex": Case("matches__patron_pid", "staging.circulation_event",
                  "SELECT * REPLACE (CASE WHEN row_number() OVER (ORDER BY patron_pid NULLS LAST) <= 3 "
                  "THEN 'not-a-pseudonym' ELSE patron_pid END AS patron_pid) FROM clean",
                  "staging.circulation_event", "core.fact_loan"),
    "row_count": Case("row_count", "staging.gate_event", "SELECT * FROM clean LIMIT 0",
                      "staging.gate_event", "core.fact_gate_event"),
    # A gate the library does not know passes staging but fails the core table's SQL rule.
    "sql_rule": Case("gate_in_dim_gate", "staging.gate_event",
                     f"SELECT * REPLACE (CASE WHEN {FIRST_ROWS} THEN 'NOWHERE-G9' ELSE gate_code END AS gate_code) "
                     "FROM clean", "core.fact_gate_event", "marts.space_utilisation"),
    # Reconciliations. Three issues whose time says the next day while their partition says this one:
    # their loans are issued a day later than the issue events that day.
    "loans_match_issue_events": Case(
        "loans_match_issue_events", "staging.circulation_event",
        "SELECT * REPLACE (CASE WHEN event_type = 'issue' AND row_number() OVER (PARTITION BY event_type "
        "ORDER BY event_at) <= 3 THEN event_at + INTERVAL 1 DAY ELSE event_at END AS event_at) FROM clean",
        "core.fact_loan", "marts.circulation_top_monthly", names="2025-09-03: 3 loans, 0 issue events"),
    # A Database Report that lost the database with the most requests of its platform.
    "counter_pr_matches_dr": Case(
        "counter_pr_matches_dr", "staging.counter_usage",
        "SELECT * FROM clean WHERE NOT (report_id = 'DR' AND platform = 'CNKI' AND database = (SELECT "
        "arg_max(database, usage_count) FROM clean WHERE report_id = 'DR' AND platform = 'CNKI' "
        "AND metric_type = 'Total_Item_Requests'))", "core.fact_counter_usage", "marts.key_figures",
        key="2025-09-01", names="2025-09 CNKI Total_Item_"),
    "counter_titles_within_items": Case(
        "counter_titles_within_items", "staging.counter_usage",
        "SELECT * REPLACE (CASE WHEN metric_type = 'Unique_Title_Requests' AND row_number() OVER (PARTITION BY "
        "metric_type ORDER BY source_file, source_line) = 1 THEN usage_count + 100000 ELSE usage_count END "
        "AS usage_count) FROM clean", "core.fact_counter_usage", "marts.key_figures", key="2025-09-01",
        names="Unique_Title_Requests"),
    # A lost file of entries: the reading rooms' gates recorded only their exits that day.
    "gate_balance_within_zone": Case(
        "gate_balance_within_zone", "staging.gate_event",
        "SELECT * FROM clean WHERE NOT (direction = 'IN' AND gate_code IN ('MAIN-G1', 'MAIN-G2'))",
        "core.fact_gate_event", "marts.space_utilisation", names="MAIN-READ 2025-09-02: IN - OUT fell to -"),
    # A direction the gates never send, which the mart's SQL takes for an exit.
    "utilisation_matches_passages": Case(
        "utilisation_matches_passages", "staging.gate_event",
        "SELECT * REPLACE (CASE WHEN row_number() OVER (ORDER BY event_at) = 1 THEN 'SIDEWAYS' ELSE direction END "
        "AS direction) FROM clean", "marts.space_utilisation", "marts.occupancy_heatmap", names="2025-09-02"),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, library):
    settings = Settings(tmp_path_factory.mktemp("blocking") / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=7, start=START, days=2)
    instance = dg.DagsterInstance.ephemeral()
    defs = build_definitions(settings)
    results = [run_stage(defs, instance, stage) for stage in plan(settings, None, None, list(FEEDS))]
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    return settings


def _corrupt(settings: Settings, case: Case) -> str | None:
    """Rewrite the case's partition (or whole table) with the corrupted rows; returns the partition key."""
    contract = contract_for(case.table)
    part = contract.partition_column
    key = case.key if part is not None else None
    where = f" WHERE {part.name} = DATE '{case.key}'" if part is not None else ""
    con = compute_connection(settings)
    con.execute(f"CREATE TEMP TABLE clean AS SELECT * FROM {case.table}{where}")
    frame = con.sql(case.corrupt).pl()
    con.close()
    write_partition(settings, contract, key, frame.select(contract.polars_schema().keys()).cast(contract.polars_schema()))
    return key


def _run_checked_and_downstream(settings: Settings, instance: dg.DagsterInstance, case: Case,
                                key: str | None) -> dg.ExecuteInProcessResult:
    """One run of the checked table's asset and the asset downstream of it."""
    defs = build_definitions(settings)
    if not case.checked.startswith("staging."):
        return run_stage(defs, instance, Stage("models", MODELS_JOB, [], None))
    # A staging asset reloads its partition from landing: with the day's files gone it keeps the
    # stored (corrupted) partition, as after any run that found no files, and checks it.
    feed = next(f for f in FEEDS if case.table.split(".")[1] in f.tables)
    for path in feed.files_for(settings.landing, key):
        path.unlink()
    selection = [dg.AssetKey(["staging", t]) for t in feed.tables] + [dg.AssetKey(case.downstream.split("."))]
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, partition_key=key, asset_selection=selection,
                                  run_config=QUIET_LOGS, raise_on_error=False,
                                  tags={"shuku/stage": f"{case.table} and {case.downstream}"})


def _materialised(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    return {e.dagster_event.asset_key.to_user_string() for e in
            instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}


@pytest.mark.slow
def test_the_same_run_on_an_uncorrupted_partition_builds_the_downstream_table(built, tmp_path):
    """The control: what the cases below block is built when nothing is wrong."""
    settings = copied_home(built, tmp_path / "copy")
    instance = dg.DagsterInstance.ephemeral()
    result = _run_checked_and_downstream(settings, instance, CASES["in_set"], DAY)
    assert result.success
    assert {"staging/gate_event", "core/fact_gate_event"} <= _materialised(instance, result.run_id)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_corrupt_table_fails_its_check_blocks_downstream_and_shows_in_status(case, built, tmp_path, monkeypatch):
    settings = copied_home(built, tmp_path / "copy")
    monkeypatch.setenv("SHUKU_HOME", str(settings.home))
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))   # dagster_instance sets it; restored after
    key = _corrupt(settings, case)

    with dagster_instance(settings) as instance:      # the home's own instance, which `shuku status` reads
        result = _run_checked_and_downstream(settings, instance, case, key)
        run_id = result.run_id
        evaluations = [e.dagster_event.event_specific_data for e in
                       instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
        materialised = _materialised(instance, run_id)
    assert not result.success
    checked_key = dg.AssetKey(case.checked.split("."))
    blocking = {(e.asset_key, e.check_name) for e in evaluations
                if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR}
    assert blocking == {(checked_key, case.check)}
    assert case.checked.replace(".", "/") in materialised
    assert case.downstream.replace(".", "/") not in materialised

    con = compute_connection(settings)
    recorded = con.execute("SELECT success, severity, unexpected_count, partition_key, unexpected_sample "
                           "FROM meta.quality_results "
                           "WHERE run_id = ? AND table_name = ? AND check_name = ?",
                           [run_id, case.checked, case.check]).fetchall()
    con.close()
    assert len(recorded) == 1
    success, severity, count, partition, sample = recorded[0]
    assert (success, severity) == (False, "error") and count >= 1
    assert case.names in sample
    # A partitioned table's checks name the partition the run wrote: the corrupted day, also for a
    # day-partitioned core fact rebuilt from it; a whole table's say "all".
    assert partition == (key if contract_for(case.checked).partition_column is not None and key else "all")

    monkeypatch.setattr(cli_shared.out, "width", 250)    # a check's name folded across lines would not be found
    status = CliRunner().invoke(main, ["status"], terminal_width=250)
    assert status.exit_code == 1, status.output
    assert "failing checks" in status.output and case.check in status.output and case.checked in status.output
    assert run_id[:8] in status.output
    assert "the latest run failed" in status.output and "error-severity check(s) fail" in status.output
