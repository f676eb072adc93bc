"""A landing file whose every line is malformed is refused whole, and the failure says so in the
library's words wherever a librarian looks: the run's failed step (a Dagster Failure with its
metadata, not a stack trace), the asset's events, the alert and `shuku status` name the file, how
many lines, the commonest reason and what to do, and never a card number or an e-mail address."""

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus

from pipelines.alerts import run_failure_alert
from pipelines.definitions import build_definitions
from pipelines.runner import dagster_instance, feeds_named, plan, run_stage
from pipelines.status import refused_files
from tests.hostile import assert_no_personal_data, broken_turnstile_file
from warehouse.settings import Settings

DAY = "2025-09-02"
FILE = f"landing/gates/turnstile_{DAY}.csv"
ACTION = f"shuku parse gates {FILE}"
RERUN = f"shuku run --from {DAY} --to {DAY} --select turnstile"


def test_a_wholly_malformed_file_is_explained_on_the_run_the_asset_the_alert_and_status(tmp_path, monkeypatch):
    settings = Settings(tmp_path / "home").ensure()
    broken_turnstile_file(settings.landing, DAY)   # every line malformed, one with a card and an e-mail
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))     # dagster_instance sets it; restored after
    instance = dagster_instance(settings)
    stage = next(s for s in plan(settings, None, None, feeds_named(["turnstile"]), models=False) if s.range)
    result = run_stage(build_definitions(settings), instance, stage)
    assert not result.success

    # The text `shuku run` prints and the run page shows as the step's error.
    for text in (result.error,):
        assert f"6 of 6 lines of {FILE} are malformed" in text
        assert ACTION in text and RERUN in text
        assert_no_personal_data(text)

    # The failed step carries the facts as metadata (the run page's table), as a Failure, not an exception.
    failure = next(r.dagster_event.step_failure_data for r in
                   instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_FAILURE))
    assert failure.error.cls_name == "DeliveryRefused" and failure.user_failure_data is not None
    facts = {k: getattr(v, "value", v) for k, v in failure.user_failure_data.metadata.items()}
    assert facts["file"] == FILE and facts["partition"] == DAY
    assert (facts["lines read"], facts["lines quarantined"]) == (6, 6)
    assert facts["commonest reason"] == "malformed_line (6 lines)"
    assert ACTION in facts["what to do"] and RERUN in facts["what to do"]
    assert_no_personal_data(str(facts))

    # The asset page's events: an observation of the table with the same description and facts.
    observed = [r.dagster_event.asset_key for r in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION)]
    assert dg.AssetKey(["staging", "gate_event"]) in observed
    observation = instance.fetch_observations(dg.AssetKey(["staging", "gate_event"]), limit=1).records[0]
    event = observation.event_log_entry.asset_observation
    assert f"6 of 6 lines of {FILE}" in event.description and event.metadata["file"].value == FILE

    # The range it was run for is a backfill, completed with the refused partition failed.
    [backfill] = instance.get_backfills()
    assert backfill.status == BulkActionStatus.COMPLETED_FAILED and backfill.title == stage.label

    # The alert names the same and says what to do first.
    alert = run_failure_alert(instance, instance.get_run_by_id(result.run_id))
    assert f"6 of 6 lines of {FILE} are malformed" in alert.error
    assert alert.see[0].startswith("what to do: ") and ACTION in alert.see[0]
    assert_no_personal_data(alert.text())

    # `shuku status`: the refused file, its count, the commonest reason and what to do.
    refused = {r["file"]: r for r in refused_files(settings)}[f"gates/turnstile_{DAY}.csv"]
    assert refused["status"] == "rejected"
    assert refused["meaning"].startswith("refused: 6 of 6 lines quarantined, most as malformed_line (6); check it with")
    assert ACTION in refused["meaning"] and RERUN in refused["meaning"]
    assert_no_personal_data(str(refused))
