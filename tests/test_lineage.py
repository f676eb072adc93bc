"""Lineage: OpenLineage events for every asset (valid against the official schemas), column
lineage from sqlglot and from the declared mappings, the transports, the meta.lineage_*
tables, `shuku trace` from a published figure to its landing files, and the lineage page."""

import hashlib
import json

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner
from referencing import Registry

from assets.feeds import FEEDS, feed_named
from assets.marts_python import TABLES as PYTHON_MART_TABLES
from assets.models.sql_model import discover_models
from assets.reference import BUILDERS, COSTS_FILE, DISCIPLINES_FILE
from assets.table_asset import lineage_assertions
from lineage.events import run_uuid
from lineage.mappings import DERIVED, REFERENCE
from lineage.observe import observe
from lineage.store import load_events, read_events
from lineage.trace import LineageGraph, trace
from lineage.transport import events_path
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.runner import plan, run_stage
from quality.checks import evaluate
from quality.plan import planned_checks
from schemas.model import contract_for, load_contracts
from tests.browser import dump_dom
from tests.openlineage_schema import official_registry, schema_errors
from tests.privacy import find_personal_data
from tests.published import copied_home, shared_home
from warehouse.lake.partitions import write_partition
from warehouse.lake.paths import table_dir
from warehouse.lake.views import compute_connection


@pytest.fixture(scope="module")
def registry() -> Registry:
    return official_registry()


@pytest.fixture(scope="module")
def built(tmp_path_factory, library):
    """The session's tiny home (tests/published.py: two days from 2025-09-01), read as it is; a test
    that writes copies it."""
    home = shared_home(tmp_path_factory, library)
    return home.settings, home.results


@pytest.fixture
def cli(built, monkeypatch):
    settings, _ = built
    monkeypatch.setenv("SHUKU_HOME", str(settings.home))
    return CliRunner()


def test_every_asset_has_start_and_complete_events_that_validate(built, registry):
    settings, _ = built
    events = read_events(settings)
    jobs = ({f"ingest_{f.name}" for f in FEEDS} | {f"core.{t}" for t in BUILDERS}
            | {m.qualified_name for m in discover_models()} | set(PYTHON_MART_TABLES))
    states: dict[str, list[str]] = {}
    for event in events:
        states.setdefault(event["job"]["name"], []).append(event["eventType"])
        assert event["job"]["namespace"] == "shuku"
        assert schema_errors(event, registry) == []
    assert jobs <= set(states)
    for job, seen in states.items():
        assert seen[:2] == ["START", "COMPLETE"], job
    complete = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    start = {e["job"]["name"]: e for e in events if e["eventType"] == "START"}
    assert all(complete[j]["run"]["runId"] == start[j]["run"]["runId"] for j in jobs)


def test_events_carry_run_job_and_dataset_facets(built):
    settings, results = built
    events = {(e["job"]["name"], e["eventType"]): e for e in read_events(settings)}
    turnstile = events[("ingest_turnstile", "COMPLETE")]
    run = turnstile["run"]
    parent = run["facets"]["parent"]["run"]["runId"]
    assert parent in {r.run_id for r in results}
    assert run["runId"] == run_uuid(parent, "ingest_turnstile")
    nominal = run["facets"]["nominalTime"]
    assert (nominal["nominalStartTime"], nominal["nominalEndTime"]) == ("2025-09-01T00:00:00Z", "2025-09-03T00:00:00Z")
    assert run["facets"]["processing_engine"]["name"] == "Dagster"
    job = turnstile["job"]["facets"]
    assert job["jobType"]["integration"] == "SHUKU" and job["jobType"]["jobType"] == "ASSET"
    assert job["sourceCodeLocation"]["path"] == "assets/gates/exports.py"
    files = [d for d in turnstile["inputs"] if d["namespace"] == f"file://{settings.landing}"]
    assert sorted(d["name"] for d in files) == [f"gates/turnstile_2025-09-0{d}.csv.gz" for d in (1, 2)]
    for item in files:
        data = (settings.landing / item["name"]).read_bytes()
        assert item["facets"]["version"]["datasetVersion"] == hashlib.sha256(data).hexdigest()
        assert item["inputFacets"]["inputStatistics"]["size"] == len(data)
        assert item["inputFacets"]["inputStatistics"]["rowCount"] > 0
    output = turnstile["outputs"][0]
    assert output["namespace"] == f"duckdb://{settings.warehouse_db}" and output["name"] == "staging.gate_event"
    assert output["outputFacets"]["outputStatistics"]["rowCount"] > 0
    assert {"schema", "documentation", "ownership", "tags", "columnLineage"} <= set(output["facets"])
    tags = {(t["field"], t["key"]): t["value"] for t in output["facets"]["tags"]["tags"]}
    assert tags[("patron_pid", "pii")] == "quasi" and tags[("patron_pid", "classification")]
    pid = output["facets"]["columnLineage"]["fields"]["patron_pid"]["inputFields"][0]
    assert pid["field"] == "card" and pid["transformations"][0]["masking"] is True
    model = events[("marts.space_utilisation", "COMPLETE")]
    assert model["job"]["facets"]["sql"]["query"].startswith("-- Occupancy")
    assert model["job"]["facets"]["sourceCodeLocation"]["path"] == "assets/models/marts/space_utilisation.sql"
    zone = events[("core.dim_zone", "COMPLETE")]
    config = [d for d in zone["inputs"] if d["name"].endswith(".yaml")]
    assert config and config[0]["facets"]["version"]["datasetVersion"]


def _assertions(event: dict) -> dict[str, list[dict]]:
    """The data-quality assertions of an event, by the table checked."""
    return {d["name"]: d["inputFacets"]["dataQualityAssertions"]["assertions"] for d in event["inputs"]
            if "dataQualityAssertions" in (d.get("inputFacets") or {})}


def test_complete_events_carry_every_check_of_their_tables_as_assertions(built):
    settings, _ = built
    complete = [e for e in read_events(settings) if e["eventType"] == "COMPLETE"]
    con = compute_connection(settings)
    recorded = {(table, name): success for table, name, success in con.execute(
        "SELECT table_name, check_name, success FROM meta.quality_results").fetchall()}
    con.close()
    for event in complete:
        checked = _assertions(event)
        outputs = {d["name"] for d in event["outputs"] if planned_checks(contract_for(d["name"]))}
        assert set(checked) == outputs, event["job"]["name"]
        for table, assertions in checked.items():
            assert sorted(a["name"] for a in assertions) == sorted(c.name for c in planned_checks(contract_for(table)))
            assert all(a["success"] is recorded[(table, a["name"])] for a in assertions)
    gate = _assertions(next(e for e in complete if e["job"]["name"] == "ingest_turnstile"))["staging.gate_event"]
    direction = next(a for a in gate if a["name"] == "in_set__direction")
    assert (direction["assertion"], direction["column"], direction["severity"]) == ("in_set", "direction", "error")
    assert direction["params"]["partitions"] == "2025-09-01..2025-09-02"
    cards = next(a for a in gate if a["name"] == "no_card_numbers")
    assert (cards["assertion"], cards["severity"]) == ("custom_sql", "error") and "column" not in cards
    assert cards["actual"] == "0 offending" and cards["description"]


def test_a_failed_check_is_a_failed_assertion_of_the_complete_event(built, tmp_path, registry):
    settings = copied_home(built[0], tmp_path / "copy")
    contract = contract_for("staging.gate_event")
    con = compute_connection(settings)
    frame = con.sql("SELECT * FROM staging.gate_event WHERE event_date = DATE '2025-09-02'").pl()
    con.close()
    write_partition(settings, contract, "2025-09-02", frame.with_columns(pl.lit("JAMMED").alias("result")))
    before = len(read_events(settings))
    with observe(settings, job="ingest_turnstile", run_id="check-run", inputs=[], outputs=["staging.gate_event"],
                 partition_keys=["2025-09-02"]) as observation:
        results = list(evaluate(contract, settings, run_id="check-run", partition_keys=["2025-09-02"]))
        observation.add_assertions("staging.gate_event", lineage_assertions(contract, results))
    start, complete = read_events(settings)[before:]
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE") and _assertions(start) == {}
    # Blocking failures only: the copied demo data is old, so freshness warns as well.
    failed = [a for a in _assertions(complete)["staging.gate_event"] if not a["success"] and a["severity"] == "error"]
    assert [(a["name"], a["assertion"], a["column"]) for a in failed] == [("in_set__result", "in_set", "result")]
    assert failed[0]["actual"].startswith(f"{frame.height:,} of ")
    assert schema_errors(complete, registry) == []


def test_staging_output_statistics_give_the_bytes_of_the_partitions_written(built):
    settings, _ = built
    event = next(e for e in read_events(settings) if e["eventType"] == "COMPLETE" and e["job"]["name"] == "ingest_turnstile")
    stats = event["outputs"][0]["outputFacets"]["outputStatistics"]
    parts = sorted(table_dir(settings, contract_for("staging.gate_event")).glob("event_date=*/*.parquet"))
    assert [p.parent.name for p in parts] == ["event_date=2025-09-01", "event_date=2025-09-02"]
    assert stats["size"] == sum(p.stat().st_size for p in parts) and stats["fileCount"] == 2


# Read from no file or table: the pseudonymiser's key version (any table), the forecast code's labels.
NO_SOURCE = {"pid_key_version", "marts.seat_demand_backtest.method", "marts.seat_demand_backtest.horizon_days"}


def _sourceless(dataset: str, column: str) -> bool:
    return column in NO_SOURCE or f"{dataset}.{column}" in NO_SOURCE


def test_declared_mappings_name_real_columns():
    for table, edges in {**REFERENCE, **DERIVED}.items():
        columns = contract_for(table).column_names
        assert {e.output_column for e in edges} <= set(columns), table
        for edge in edges:
            if table in DERIVED:
                assert edge.input_column in contract_for(edge.input_table).column_names, (table, edge)
    for table in DERIVED:
        undeclared = {c for c in contract_for(table).column_names if not _sourceless(table, c)} - {
            e.output_column for e in DERIVED[table]}
        # The consent registry's bookkeeping (when, by whom, tombstones) is read from no table.
        assert table == "meta.consent" or not undeclared, (table, undeclared)


def test_trace_of_every_mart_and_core_column_ends_at_its_sources(built):
    """Landing files, the config file, or for a value written in a model (a parameter), the model's SQL."""
    settings, _ = built
    load_events(settings)
    graph = LineageGraph(settings)
    assets = {".".join(key.path) for key in build_definitions(settings).resolve_asset_graph().materializable_asset_keys}
    tables = {name: c for name, c in load_contracts().items() if c.layer in ("marts", "core") and name in assets}
    assert set(tables) <= set(graph.latest), "every mart and core asset has a completed run"
    configs = {settings.library_config, DISCIPLINES_FILE, settings.library_config.with_name(COSTS_FILE)}
    sources: dict[str, set[str]] = {}
    for name, contract in tables.items():
        for column in contract.column_names:
            target = f"{name}.{column}"
            walked = trace(settings, target, graph=graph)
            dead = [(h["dataset"], h["column"]) for h in walked["hops"] if not h["inputs"]]
            # A table only a command writes (no asset) has no run to follow.
            assert all(_sourceless(d, c) or graph.constant_source(d, c) or d not in assets for d, c in dead), (target, dead)
            if _sourceless(name, column):
                continue
            assert walked["landing_files"], target
            for source in walked["landing_files"]:
                if source["kind"] == "sql":
                    sql = graph.run_of(source["dataset"])["sql"].encode("utf-8")
                    assert source["sha256"] == hashlib.sha256(sql).hexdigest(), (target, source)
                    continue
                path = Path(source["path"])
                assert source["kind"] == "landing" or path in configs, (target, source)
                assert source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), (target, source)
            sources[target] = {f["file"] for f in walked["landing_files"]}
    assert sources["marts.space_utilisation.seat_capacity"] == {settings.library_config.name}
    assert sources["core.discipline_map.class_prefix"] == {DISCIPLINES_FILE.name}
    # the library's settings reach a figure through their reference tables
    assert COSTS_FILE in sources["marts.eresource_top_monthly.cost_per_use"]
    assert settings.library_config.name in sources["marts.desk_staffing.staff_needed"]
    assert sources["core.dim_date.weekday"] == {settings.library_config.name}
    # the scheme is the one whose class matched a discipline prefix (the perturbation oracle shows it)
    assert sources["core.dim_title.classification_scheme"] == {"landing/catalogue/catalogue_2025-09-02.mrc",
                                                               DISCIPLINES_FILE.name}
    occupancy = sources["marts.space_utilisation.occupancy_peak"]
    assert {f"landing/gates/turnstile_2025-09-0{d}.csv.gz" for d in (1, 2)} <= occupancy


def test_meta_tables_are_rebuilt_from_the_events(built):
    settings, _ = built
    counts = load_events(settings)
    assert all(counts[t] > 0 for t in counts), counts
    con = compute_connection(settings)
    try:
        states = dict(con.execute("select job, state from meta.lineage_runs").fetchall())
        masked = con.execute("""select distinct input_column, subtype, masking from meta.lineage_column_edges
                                where output_dataset = 'staging.circulation_event' and output_column = 'patron_pid'""").fetchall()
        files = con.execute("""select name, version, bytes from meta.lineage_datasets
                               where direction = 'input' and name like 'gates/turnstile_%'""").fetchall()
    finally:
        con.close()
    assert set(states.values()) == {"COMPLETE"}
    assert masked == [("cardnumber", "TRANSFORMATION", True)]
    assert files and all(len(version) == 64 and size > 0 for _, version, size in files)


def test_trace_reaches_the_turnstile_files_with_their_checksums(built, cli):
    settings, _ = built
    result = cli.invoke(main, ["trace", "marts.space_utilisation.occupancy_peak", "--format", "json"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    hops = [f"{h['dataset']}.{h['column']}" for h in trace["hops"]]
    assert hops[0] == "marts.space_utilisation.occupancy_peak"
    assert {"core.fact_gate_event.direction", "staging.gate_event.direction"} <= set(hops)
    assert "SUM" in " ".join(trace["hops"][0]["expression"])
    landing = {f["file"]: f for f in trace["landing_files"] if f["kind"] == "landing"}
    turnstile = sorted(n for n in landing if n.startswith("landing/gates/turnstile_") and n.endswith(".csv.gz"))
    assert turnstile == [f"landing/gates/turnstile_2025-09-0{d}.csv.gz" for d in (1, 2)]
    for name in turnstile:
        data = (settings.home / name).read_bytes()
        assert landing[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert landing[name]["bytes"] == len(data) and landing[name]["ingested_at"]
    assert all(h["run_id"] and h["row_count"] for h in trace["hops"])

    text = cli.invoke(main, ["trace", "marts.space_utilisation.occupancy_peak"])
    assert text.exit_code == 0, text.output
    assert "← core.fact_gate_event.direction [DIRECT AGGREGATION]" in text.output
    assert "landing landing/gates/turnstile_2025-09-01.csv.gz  sha256 " in text.output


def test_trace_of_one_partition_and_downstream(cli):
    one = json.loads(cli.invoke(main, ["trace", "marts.space_utilisation.occupancy_peak", "--partition", "2025-09-02",
                                       "--format", "json"]).stdout)
    assert [f["file"] for f in one["landing_files"] if f["file"].startswith("landing/gates/")] == [
        "landing/gates/turnstile_2025-09-02.csv.gz"]
    down = json.loads(cli.invoke(main, ["trace", "staging.gate_event.direction", "--downstream", "--format", "json"]).stdout)
    reached = {f"{h['dataset']}.{h['column']}" for h in down["hops"]}
    assert {"core.fact_gate_event.direction", "marts.space_utilisation.occupancy_peak"} <= reached


def test_trace_of_an_unknown_column_is_a_usage_error(cli):
    result = cli.invoke(main, ["trace", "marts.space_utilisation.occupancy"])
    assert result.exit_code == 2
    assert "has no column 'occupancy'" in result.output and "occupancy_peak" in result.output


@pytest.mark.slow
def test_lineage_page_renders_the_graph_in_headless_chromium(built, cli, tmp_path):
    out = tmp_path / "lineage.html"
    result = cli.invoke(main, ["lineage", "page", "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    dom = dump_dom(out, tmp_path / "chromium")
    for table in ("staging.gate_event", "core.fact_gate_event", "marts.space_utilisation", "gates/turnstile_*.csv.gz"):
        assert f'id="table-{table}"' in dom, table
    assert "<svg" in dom and "core.fact_gate_event.direction" in dom


def test_a_damaged_landing_file_fails_its_asset_with_a_fail_event(built, tmp_path):
    settings = copied_home(built[0], tmp_path / "copy")
    damaged = settings.landing / "circulation" / "statistics_2025-09-02.csv.gz"
    damaged.write_bytes(b"\x1f\x8b\x08\x00broken")
    stages = plan(settings, None, None, [feed_named("circulation")], models=False)
    results = [run_stage(build_definitions(settings), dg.DagsterInstance.ephemeral(), s) for s in stages]
    assert not results[-1].success
    fails = [e for e in read_events(settings) if e["eventType"] == "FAIL"]
    assert [e["job"]["name"] for e in fails] == ["ingest_circulation"]
    assert "statistics_2025-09-02.csv.gz" in fails[0]["run"]["facets"]["errorMessage"]["message"]
    load_events(settings)
    con = compute_connection(settings)
    states = con.execute("select state, count(*) from meta.lineage_runs where job = 'ingest_circulation' group by 1").fetchall()
    con.close()
    assert dict(states) == {"COMPLETE": 1, "FAIL": 1}


def test_no_card_number_in_events_or_anywhere_outside_landing(built):
    settings, _ = built
    assert events_path(settings).stat().st_size > 0
    assert find_personal_data(settings) == []
