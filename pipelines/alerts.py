"""Alerts: what a failed run, a failed check, an unrecognised landing file or a COUNTER report that
could not be harvested says, read from
Dagster's event log, and the two sensors that send them.

An alert names the run, job, partition, table, check or error and the command that shows more.
The sensors and `shuku run` (which runs without the daemon) share these functions;
`pipelines.alert_delivery` logs and sends what they find.
"""

from __future__ import annotations

import json
import re
import shlex

import dagster as dg

from assets.resources import ShukuWarehouse
from assets.eresources.coverage import FAILED_CELLS
from assets.staging import EMPTY_FILES, UNRECOGNISED_FILES
from pipelines.alert_delivery import (CHECK_FAILURE, HARVEST_FAILURE, RUN_FAILURE, UNRECOGNISED_FILE, Alert,
                                      configured_channels, send)
from pipelines.runner import error_message
from warehouse.audit_anchor import ANCHOR_ALERT, UNKEYED_ALERT, anchor_commands, current_anchors
from warehouse.settings import Settings


def _asset_name(key: dg.AssetKey) -> str:
    return ".".join(key.path)


def _run_partition(run: dg.DagsterRun) -> str | None:
    tags = run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if start and end:
        return start if start == end else f"{start}..{end}"
    return None


def _failed_checks(instance: dg.DagsterInstance, run_id: str, warnings: bool) -> list:
    evaluations = [e.dagster_event.event_specific_data
                   for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    return [e for e in evaluations if not e.passed and (warnings or e.severity == dg.AssetCheckSeverity.ERROR)]


def _text(metadata: dict, name: str) -> str | None:
    value = metadata.get(name)
    return None if value is None else str(getattr(value, "value", value))


def _short(message: str) -> str:
    """An error without the module path of its class: `DagsterAssetCheckFailedError: …`."""
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", message)


def _what_to_do(metadata: dict) -> list[str]:
    """What a failure's metadata (`assets.refusal`) says to do: one line per file refused whole."""
    files = metadata.get("files")
    entries = getattr(files, "value", files) or [{"what to do": _text(metadata, "what to do")}]
    return [f"what to do: {e['what to do']}" for e in entries if isinstance(e, dict) and e.get("what to do")]


def run_failure_alert(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Alert:
    """The alert for a failed run: its first failed step and error, the error-severity checks that
    failed in it and the assets it planned but did not build."""
    steps, errors, actions = [], [], []
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        if event.step_failure_data and event.step_failure_data.error:
            steps.append(event.step_key)
            errors.append(_short(error_message(event.step_failure_data.error)))
        if event.step_failure_data and event.step_failure_data.user_failure_data:
            actions += _what_to_do(event.step_failure_data.user_failure_data.metadata)
    # Every failed step: a refused delivery and a failing check of another table fail one run.
    step = ", ".join(steps) or None
    error = errors[0] if len(errors) == 1 else " | ".join(f"{s}: {e}" for s, e in zip(steps, errors)) or None
    if error is None:
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
            data = record.dagster_event.event_specific_data
            error = _short(error_message(data.error)) if data and data.error else record.dagster_event.message
    planned = {_asset_name(e.dagster_event.event_specific_data.asset_key)
               for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)}
    built = {_asset_name(e.dagster_event.asset_key)
             for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    checks = _failed_checks(instance, run.run_id, warnings=False)
    tables = list(dict.fromkeys(_asset_name(c.asset_key) for c in checks))
    stage = run.tags.get("shuku/stage")
    partition = _run_partition(run)
    return Alert(
        kind=RUN_FAILURE, key=f"{RUN_FAILURE}:{run.run_id}", run_id=run.run_id, job=run.job_name, partition=partition,
        summary=f"[shuku] run failed: {stage or run.job_name + (f' ({partition})' if partition else '')}, "
                f"step {step or '-'}",
        table=", ".join(tables) or None, check=", ".join(f"{_asset_name(c.asset_key)} {c.check_name}" for c in checks) or None,
        error=error, step=step, not_built=sorted(planned - built),
        see=[*actions, *(f"shuku quality {t}" for t in tables), "shuku status",
             f"shuku ui, then Runs, run {run.run_id} (its logs and the failed step)"])


def check_failure_alerts(instance: dg.DagsterInstance, run_id: str, warnings: bool = False) -> list[Alert]:
    """One alert per check that failed in a run (error severity; warnings too when ``warnings``)."""
    run = instance.get_run_by_id(run_id)
    alerts = []
    for check in _failed_checks(instance, run_id, warnings):
        table, severity = _asset_name(check.asset_key), check.severity.value.lower()
        partition = _text(check.metadata, "partitions") or (run and _run_partition(run)) or None
        alerts.append(Alert(
            kind=CHECK_FAILURE, key=f"{CHECK_FAILURE}:{run_id}:{table}:{check.check_name}", run_id=run_id,
            job=run.job_name if run else "-", partition=partition, table=table, check=check.check_name,
            severity=severity, observed=_text(check.metadata, "observed"),
            summary=f"[shuku] check failed ({severity}): {table} {check.check_name}"
                    f"{f' ({partition})' if partition else ''}",
            see=[f"shuku quality {table}", "shuku status",
                 f"shuku ui, then Assets, {table}, Checks (run {run_id})"]))
    return alerts


def _materialized(instance: dg.DagsterInstance, run_id: str, entry: str):
    """(table, each item of the metadata ``entry``) of every materialization of a run that has one."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.dagster_event.event_specific_data.materialization
        value = materialization.metadata.get(entry)
        for item in (getattr(value, "value", value) or []):
            yield _asset_name(materialization.asset_key), item


def unrecognised_file_alerts(instance: dg.DagsterInstance, run_id: str) -> list[Alert]:
    """One alert per landing file of which a run understood nothing (logged `unrecognised`, not loaded),
    or that was empty (logged `empty`: usually a failed export)."""
    run = instance.get_run_by_id(run_id)
    alerts, seen = [], set()
    found = [(t, f, "unrecognised") for t, f in _materialized(instance, run_id, UNRECOGNISED_FILES)]
    for table, source_file, status in found + [(t, f, "empty") for t, f in _materialized(instance, run_id, EMPTY_FILES)]:
        if source_file in seen:
            continue
        seen.add(source_file)
        alerts.append(Alert(
            kind=UNRECOGNISED_FILE, key=f"{UNRECOGNISED_FILE}:{run_id}:{source_file}", run_id=run_id,
            job=run.job_name if run else "-", partition=run and _run_partition(run), table=table,
            summary=f"[shuku] landing file {'empty' if status == 'empty' else 'not recognised'}, not loaded: "
                    f"landing/{source_file}",
            error=(f"landing/{source_file}: empty (no bytes, or a header and no rows), usually a failed export; "
                   "ask for it again (meta.ingest_log: empty). The run loaded the other files." if status == "empty"
                   else f"landing/{source_file}: no row was read from it and none was rejected; its structure was "
                   f"not recognised as a file of {table} (meta.ingest_log: unrecognised). The run loaded the "
                   "other files."),
            see=[f"shuku parse SOURCE {source_file}",
                 f"shuku sql \"select * from meta.ingest_log where file_status = '{status}'\""]))
    return alerts


def harvest_failure_alerts(instance: dg.DagsterInstance, run_id: str) -> list[Alert]:
    """One alert per platform and report a harvest could not get (credentials refused, a report the
    platform does not support, an answer that could not be loaded): the other platforms went on."""
    run = instance.get_run_by_id(run_id)
    alerts = []
    for table, cell in _materialized(instance, run_id, FAILED_CELLS):
        months = cell["months"]
        span = months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"
        alerts.append(Alert(
            kind=HARVEST_FAILURE, key=f"{HARVEST_FAILURE}:{run_id}:{cell['platform']}:{cell['report_id']}:{span}",
            run_id=run_id, job=run.job_name if run else "-", partition=span, table=table,
            summary=f"[shuku] COUNTER report not harvested: {cell['platform']} {cell['report_id']} {span}",
            error=f"{cell['reason']}" + (f" (COUNTER exception {cell['code']})" if cell.get("code") else ""),
            see=[f"shuku harvest --platform {shlex.quote(cell['platform'])} --from {months[0]} --to {months[-1]}",
                 "shuku status (the coverage matrix)"]))
    return alerts


def _finished_run_alerts(instance: dg.DagsterInstance, run_id: str, warnings: bool) -> list[Alert]:
    """What a finished run found besides its own failure: failed checks, unrecognised files, failed harvests."""
    return [*check_failure_alerts(instance, run_id, warnings), *unrecognised_file_alerts(instance, run_id),
            *harvest_failure_alerts(instance, run_id)]


def anchor_alerts(settings: Settings, run_ids: list[str]) -> list[Alert]:
    """The audit trail's heads after these runs, to publish (one alert per set of heads), or, while the
    trail has no key, the command that keys it (once)."""
    if not run_ids:
        return []
    anchors = current_anchors(settings)
    if anchors is None:
        return [Alert(kind=UNKEYED_ALERT, key=UNKEYED_ALERT, run_id=run_ids[-1], job="-",
                      summary="[shuku] the audit trail has no key: anyone who can write the lake could rewrite it",
                      see=["shuku audit rekey"])]
    return [Alert(kind=ANCHOR_ALERT, key=f"{ANCHOR_ALERT}:{' '.join(anchors)}", run_id=run_ids[-1], job="-",
                  summary=f"[shuku] audit trail heads after run {run_ids[-1][:8]}: keep them to check the trail later",
                  see=anchor_commands(anchors))]


def alert_after_runs(settings: Settings, instance: dg.DagsterInstance, run_ids: list[str]) -> list[Alert]:
    """What the sensors would send about these runs, for runs made without the daemon (`shuku run`)."""
    channels, problem = configured_channels()
    alerts = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None:
            continue
        if run.status == dg.DagsterRunStatus.FAILURE:
            alerts.append(run_failure_alert(instance, run))
        alerts += _finished_run_alerts(instance, run_id, channels.warnings)
    alerts += anchor_alerts(settings, [r for r in run_ids if instance.get_run_by_id(r) is not None])
    return send(settings, alerts, None if problem else channels)


def run_failure_alerts_sensor() -> dg.SensorDefinition:
    @dg.run_failure_sensor(name="run_failure_alerts", default_status=dg.DefaultSensorStatus.RUNNING,
                           minimum_interval_seconds=30,
                           description="Alerts on every failed run: the alerts log, e-mail and webhook "
                                       "when configured (SHUKU_SMTP_*, SHUKU_ALERT_WEBHOOK).")
    def sensor(context: dg.RunFailureSensorContext, shuku: ShukuWarehouse):
        sent = send(shuku.settings(), [run_failure_alert(context.instance, context.dagster_run)])
        context.log.info(f"{len(sent)} alert(s) sent for run {context.dagster_run.run_id}")

    return sensor


_FINISHED = (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE)


def _latest_storage_id(instance: dg.DagsterInstance, event_type: dg.DagsterEventType) -> int:
    records = instance.fetch_run_status_changes(event_type, limit=1, ascending=False).records
    return records[0].storage_id if records else 0


def check_failure_alerts_sensor() -> dg.SensorDefinition:
    @dg.sensor(name="check_failure_alerts", default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
               description="Alerts on every error-severity check that fails in a finished run (warnings too with "
                           "SHUKU_ALERT_WARNINGS=1): the alerts log, e-mail and webhook when configured.")
    def sensor(context: dg.SensorEvaluationContext, shuku: ShukuWarehouse):
        instance = context.instance
        if not context.cursor:
            # Start from now: turning alerts on does not replay a home folder's history.
            context.update_cursor(json.dumps({t.value: _latest_storage_id(instance, t) for t in _FINISHED}))
            return dg.SkipReason("alerting on runs that finish from now on")
        cursor = json.loads(context.cursor)
        run_ids = []
        for event_type in _FINISHED:
            records = instance.fetch_run_status_changes(
                dg.RunStatusChangeRecordsFilter(event_type, after_storage_id=cursor.get(event_type.value, 0)),
                limit=100, ascending=True).records
            run_ids += [r.run_id for r in records]
            if records:
                cursor[event_type.value] = records[-1].storage_id
        channels, problem = configured_channels()
        alerts = [a for run_id in run_ids for a in _finished_run_alerts(instance, run_id, channels.warnings)]
        alerts += anchor_alerts(shuku.settings(), run_ids)
        sent = send(shuku.settings(), alerts, None if problem else channels)
        context.update_cursor(json.dumps(cursor))
        if not sent:
            return dg.SkipReason(f"{len(run_ids)} finished run(s), no new failed check")
        context.log.info(f"{len(sent)} alert(s) sent on {len(run_ids)} finished run(s)")
        return None

    return sensor


def alert_sensors() -> list[dg.SensorDefinition]:
    return [run_failure_alerts_sensor(), check_failure_alerts_sensor()]
