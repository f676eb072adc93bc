"""Runs started outside the UI (`shuku run`, `shuku demo`, `shuku harvest`) as runs of the code location
the UI serves, so Overview, the job pages, the asset pages and backfills list them like the UI's own.

The UI (`shuku ui`) loads the module ``UI_MODULE``; Dagster ties a run to a job of that location by
the run's remote origin (repository and location name). `execute_in_process` leaves the origin
out, so such runs showed only in the Runs list. Here the run is created with the origin the UI
would give it and then executed in this process, step by step, as before.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import click
import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import create_execution_plan, execute_run
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.workspace.load_target import ModuleTarget

from warehouse.settings import REPO_ROOT

# The module `shuku ui` serves (`dagster dev -m UI_MODULE`); its name is the code location's name.
UI_MODULE = "pipelines.definitions"
UI_ATTRIBUTE = "defs"
# Who started a run and with which command: the OS account by its number (no name), and the command
# with its options (never a path: a home folder's path can hold a person's name).
USER_TAG, COMMAND_TAG, STAGE_TAG = "dagster/user", "shuku/command", "shuku/stage"


def ui_args(port: int) -> list[str]:
    """The arguments of `dagster dev` that serve the UI's code location on 127.0.0.1."""
    return ["dev", "-h", "127.0.0.1", "-p", str(port), "-m", UI_MODULE]


def served_origin(job_name: str) -> RemoteJobOrigin:
    """The origin the UI gives a run of ``job_name`` it launches (the same location and repository)."""
    location = ModuleTarget(module_name=UI_MODULE, attribute=None, working_directory=None,
                            location_name=None).create_origins()[0]
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME), job_name)


def _command() -> str:
    """`shuku run --from 2025-09-01 --select gates`: the command and the options given, paths left out."""
    context = click.get_current_context(silent=True)
    if context is None:
        return Path(sys.argv[0]).name or "python"
    shown = [context.command_path]
    for param in context.command.params:
        value = context.params.get(param.name)
        if value in (None, False, ()) or isinstance(param.type, click.Path) or not param.opts:
            continue
        option = max(param.opts, key=len)
        if value is True:
            shown.append(option)
        else:
            text = value.strftime("%Y-%m-%d") if hasattr(value, "strftime") else str(value)
            if text != str(param.default):
                shown.append(f"{option} {text}")
    return " ".join(shown)


def launch_tags() -> dict[str, str]:
    """The tags saying who ran it and how: shown on the run page and filterable in the Runs list."""
    account = f"uid {os.getuid()}" if hasattr(os, "getuid") else "local account"
    return {USER_TAG: account, COMMAND_TAG: _command()}


def execute_as_served(job: dg.JobDefinition, instance: dg.DagsterInstance, tags: Mapping[str, str],
                      run_config: Mapping, asset_selection: Sequence[dg.AssetKey] | None):
    """Run ``job`` (its ``asset_selection`` only, when given) in this process, one step after the other,
    as a run of the UI's code location. Returns Dagster's result (success, run_id, all_events)."""
    selected = list(asset_selection or [])
    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={}, asset_selection=selected or None)
    in_memory = InMemoryJob(ephemeral)
    plan = create_execution_plan(in_memory, run_config=run_config,
                                 instance_ref=instance.get_ref() if instance.is_persistent else None)
    code = ReconstructableRepository.for_module(UI_MODULE, UI_ATTRIBUTE, str(REPO_ROOT)).get_python_origin()
    run = instance.create_run_for_job(
        job_def=ephemeral, execution_plan=plan, run_config=run_config, tags={**job.run_tags, **tags},
        asset_selection=frozenset(selected) or None, remote_job_origin=served_origin(job.name),
        job_code_origin=code.get_job_origin(job.name))
    return execute_run(in_memory, run, instance, raise_on_error=False)


def record_backfill(defs: dg.Definitions, instance: dg.DagsterInstance, run_id: str, assets: Sequence[dg.AssetKey],
                    first: str, last: str, started: float, title: str) -> str:
    """Record a finished run over the partitions first..last as a backfill of ``assets`` (the UI's
    Backfills list, with the partitions it materialised and those that failed), and tag the run
    with it. Recorded once the run has ended, as completed: the daemon never launches it again."""
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.execution.asset_backfill import AssetBackfillData
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.storage.tags import BACKFILL_ID_TAG
    from dagster._core.utils import make_new_backfill_id

    graph = defs.resolve_asset_graph()
    partitions = graph.get(assets[0]).partitions_def
    keys = partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))
    data = AssetBackfillData.from_asset_partitions(asset_graph=graph, partition_names=keys, asset_selection=list(assets),
                                                   dynamic_partitions_store=instance, backfill_start_timestamp=started,
                                                   all_partitions=False)
    done = {(r.dagster_event.asset_key, r.dagster_event.partition)
            for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    materialized = AssetGraphSubset.from_asset_partition_set(
        {AssetKeyPartitionKey(a, p) for a, p in done if a in assets}, graph)
    failed = data.target_subset - materialized
    data = data._replace(requested_runs_for_target_roots=True, requested_subset=data.target_subset,
                         materialized_subset=materialized, failed_and_downstream_subset=failed)
    backfill_id = make_new_backfill_id()
    status = BulkActionStatus.COMPLETED_SUCCESS if failed.is_empty else BulkActionStatus.COMPLETED_FAILED
    run = instance.get_run_by_id(run_id)
    tags = {k: run.tags[k] for k in (USER_TAG, COMMAND_TAG, STAGE_TAG) if k in run.tags}
    instance.add_backfill(PartitionBackfill(
        backfill_id, status=status, from_failure=False, tags=tags, backfill_timestamp=started,
        asset_selection=list(assets), title=title, description=run.tags.get(COMMAND_TAG),
        asset_backfill_data=data, backfill_end_timestamp=time.time()))
    instance.add_run_tags(run_id, {BACKFILL_ID_TAG: backfill_id})
    return backfill_id
