"""Runs made by `shuku run` are runs of the code location `shuku ui` serves: after a real `shuku run`
on a tiny library, the UI's GraphQL API lists them where Overview, the job page and the asset page
look (by job and repository@location, with the run's origin) and, for a range of partitions, on the
Backfills page; tagged with who ran them (the OS account's number, not its name) and the command."""

import datetime as dt
import getpass
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator import generate
from pipelines.jobs import DAILY_JOB
from pipelines.launch import COMMAND_TAG, UI_MODULE, USER_TAG
from tests.webserver import graphql, serving_ui
from warehouse.settings import Settings

DAY = "2025-09-01"
REPOSITORY = "__repository__"
# What the job page asks: the job of the code location, and its runs (filtered by repository@location).
JOB = """query ($job: String!, $repo: String!, $location: String!) {
  pipelineOrError(params: {pipelineName: $job, repositoryName: $repo, repositoryLocationName: $location}) {
    __typename ... on Pipeline { runs { runId status tags { key value } } } } }"""
JOB_RUNS = """query ($job: String!, $label: String!) {
  runsOrError(filter: {pipelineName: $job, tags: [{key: ".dagster/repository", value: $label}]}) {
    ... on Runs { results { runId } } } }"""
# What Overview's timeline groups runs by: each run's repository origin.
OVERVIEW = """{ runsOrError { ... on Runs { results { runId pipelineName
    repositoryOrigin { repositoryName repositoryLocationName } } } } }"""
BACKFILLS = """{ partitionBackfillsOrError { ... on PartitionBackfills { results { status title description
    assetBackfillData { assetBackfillStatuses { ... on AssetPartitionsStatusCounts {
        assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed } } }
    runs(limit: 5) { runId } } } } }"""
ASSET = """{ assetNodes(assetKeys: [{path: ["staging", "gate_event"]}]) {
    jobNames assetMaterializations(limit: 1) { runId } } }"""


@pytest.mark.slow
def test_a_shuku_run_is_listed_on_overview_the_job_page_the_asset_page_and_backfills(tmp_path, library):
    settings = Settings(tmp_path / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=5, start=dt.date.fromisoformat(DAY), days=1)
    env = {**os.environ, "SHUKU_HOME": str(settings.home), "DAGSTER_DISABLE_TELEMETRY": "1"}
    env.pop("DAGSTER_HOME", None)
    shuku = Path(sys.executable).parent / "shuku"
    done = subprocess.run([str(shuku), "run", "--select", "gates", "--no-models"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    with serving_ui(settings.home, tmp_path) as base:
        overview = graphql(base, OVERVIEW)["runsOrError"]["results"]
        assert len(overview) == 1, overview
        run = overview[0]
        assert run["pipelineName"] == DAILY_JOB
        assert run["repositoryOrigin"] == {"repositoryName": REPOSITORY, "repositoryLocationName": UI_MODULE}

        job = graphql(base, JOB, {"job": DAILY_JOB, "repo": REPOSITORY, "location": UI_MODULE})["pipelineOrError"]
        assert job["__typename"] == "Pipeline"
        assert [r["runId"] for r in job["runs"]] == [run["runId"]] and job["runs"][0]["status"] == "SUCCESS"
        listed = graphql(base, JOB_RUNS, {"job": DAILY_JOB, "label": f"{REPOSITORY}@{UI_MODULE}"})
        assert [r["runId"] for r in listed["runsOrError"]["results"]] == [run["runId"]]

        # A range of partitions is also a backfill (completed), on the Backfills page with its run.
        [backfill] = graphql(base, BACKFILLS)["partitionBackfillsOrError"]["results"]
        assert backfill["status"] == "COMPLETED_SUCCESS" and [r["runId"] for r in backfill["runs"]] == [run["runId"]]
        assert backfill["description"] == "shuku run --select gates --no-models"
        counts = {"/".join(c["assetKey"]["path"]): c for c in backfill["assetBackfillData"]["assetBackfillStatuses"]}
        assert counts["staging/gate_event"] == {"assetKey": {"path": ["staging", "gate_event"]}, "numPartitionsTargeted": 1,
                                                "numPartitionsMaterialized": 1, "numPartitionsFailed": 0}

        asset = graphql(base, ASSET)["assetNodes"][0]
        assert DAILY_JOB in asset["jobNames"]
        assert asset["assetMaterializations"][0]["runId"] == run["runId"]

    tags = {t["key"]: t["value"] for t in job["runs"][0]["tags"]}
    assert tags[COMMAND_TAG] == "shuku run --select gates --no-models"
    assert tags[USER_TAG] == f"uid {os.getuid()}"
    assert tags["dagster/asset_partition_range_start"] == DAY
    everything = " ".join(tags.values())
    assert getpass.getuser() not in everything.split() and str(settings.home) not in everything
