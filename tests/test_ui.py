"""`shuku ui` serves the Dagster UI on 127.0.0.1 for a home folder where the nightly job ran once (tiny
library, one day): its GraphQL API answers with the asset graph, the checks and the run's status, and
headless Chromium draws the asset graph."""

import datetime as dt
from pathlib import Path

import pytest

from generator import generate
from pipelines.definitions import build_definitions
from pipelines.jobs import NIGHTLY_JOB
from pipelines.runner import QUIET_LOGS, dagster_instance
from tests.browser import dump_dom
from tests.webserver import graphql, serving_ui
from warehouse.settings import Settings

DAY = "2025-09-01"
GRAPH = """{ assetNodes { assetKey { path } groupName kinds
                          owners { ... on TeamAssetOwner { team } } } }"""
CHECKS = """{ assetNodes(assetKeys: [{path: ["staging", "gate_event"]}, {path: ["marts", "space_utilisation"]}]) {
    assetKey { path }
    assetChecksOrError { ... on AssetChecks { checks { name blocking
        executionForLatestMaterialization { status runId evaluation { severity } } } } } } }"""
RUN = """query ($runId: ID!) { runOrError(runId: $runId) {
    __typename ... on Run { status jobName tags { key value } } } }"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory, library):
    """The UI's address and the nightly run's id."""
    root = tmp_path_factory.mktemp("ui")
    settings = Settings(root / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=5, start=dt.date.fromisoformat(DAY), days=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(settings.dagster_home))    # dagster_instance sets it; restored after
        result = build_definitions(settings).resolve_job_def(NIGHTLY_JOB).execute_in_process(
            instance=dagster_instance(settings), partition_key=DAY, run_config=QUIET_LOGS, raise_on_error=False)
    assert result.success

    with serving_ui(settings.home, root) as base:
        yield base, result.run_id


@pytest.mark.slow
def test_ui_serves_the_asset_graph_by_source_and_layer(ui):
    base, _ = ui
    nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(base, GRAPH)["assetNodes"]}
    assert {"staging/gate_event", "core/fact_loan", "marts/space_utilisation"} <= set(nodes)
    gate_event = nodes["staging/gate_event"]
    assert gate_event["groupName"] == "gates" and nodes["staging/circulation_event"]["groupName"] == "circulation"
    assert nodes["core/fact_loan"]["groupName"] == "core" and nodes["marts/space_utilisation"]["groupName"] == "marts"
    assert {"polars", "parquet", "duckdb"} <= set(gate_event["kinds"])
    assert gate_event["owners"] and all(o["team"] for o in gate_event["owners"])


@pytest.mark.slow
def test_ui_shows_the_checks_of_the_run_and_its_status(ui):
    base, run_id = ui
    checks = {("/".join(n["assetKey"]["path"]), c["name"]): c
              for n in graphql(base, CHECKS)["assetNodes"] for c in n["assetChecksOrError"]["checks"]}
    passed = checks[("staging/gate_event", "in_set__direction")]
    assert passed["blocking"] and passed["executionForLatestMaterialization"]["status"] == "SUCCEEDED"
    assert passed["executionForLatestMaterialization"]["runId"] == run_id
    assert checks[("marts/space_utilisation", "occupancy_within_limit")]["executionForLatestMaterialization"]["status"] == "SUCCEEDED"
    # A day of 2025 is older than the freshness SLA allows: the stale table's freshness check fails, as a warning.
    stale = checks[("staging/gate_event", "freshness")]
    assert not stale["blocking"]
    assert stale["executionForLatestMaterialization"]["status"] == "FAILED"
    assert stale["executionForLatestMaterialization"]["evaluation"]["severity"] == "WARN"

    run = graphql(base, RUN, {"runId": run_id})["runOrError"]
    assert (run["__typename"], run["status"], run["jobName"]) == ("Run", "SUCCESS", NIGHTLY_JOB)
    assert {"key": "dagster/partition", "value": DAY} in run["tags"]
    missing = graphql(base, RUN, {"runId": "00000000-0000-0000-0000-000000000000"})["runOrError"]
    assert missing["__typename"] == "RunNotFoundError"


def _text_of(base: str, path: str, profile: Path, expected: set[str]) -> str:
    """The page's DOM once it shows every expected word (the app loads its data after the page)."""
    dom = ""
    for attempt in range(3):
        dom = dump_dom(f"{base}{path}", profile / str(attempt), timeout=180, settle_ms=30_000 * (attempt + 1))
        if all(word in dom for word in expected):
            break
    return dom


@pytest.mark.slow
def test_chromium_draws_the_asset_graph(ui, tmp_path):
    base, _ = ui
    groups = {"circulation", "patrons", "searches", "marc", "counter", "ezproxy", "gates", "core", "marts"}
    overview = _text_of(base, "/asset-groups", tmp_path / "lineage", groups | {"Global asset lineage"})
    assert "Global asset lineage" in overview
    assert groups <= set(overview.replace("<", " ").replace(">", " ").split()), "a group is missing from the graph"

    gates = _text_of(base, "/locations/pipelines.definitions/asset-groups/gates", tmp_path / "gates",
                     {"gate_event", "gate_count", "fact_gate_event", "Asset checks"})
    for word in ("gate_event", "gate_count", "fact_gate_event", "Asset checks", "Polars", "DuckDB"):
        assert word in gates, f"{word} is not on the gates group's graph"
