"""Lineage: OpenLineage events for every asset (valid against the official schemas), column
lineage from sqlglot and from the declared mappings, the transports, the meta.lineage_*
tables, `shuku trace` from a published figure to its landing files, and the lineage page."""

import datetime as dt
import hashlib
import http.server
import json
import logging
import socket
import subprocess
import threading
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from assets.feeds import FEEDS, feed_named
from assets.models import discover_models
from assets.reference import BUILDERS
from generator import generate
from lineage.columns import sql_lineage
from lineage.events import run_uuid
from lineage.observe import observe
from lineage.store import load_events, read_events
from lineage.transport import events_path
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.runner import plan, run_stage
from tests.privacy import find_personal_data
from warehouse.contracts import contract_for
from warehouse.settings import Settings
from warehouse.storage import compute_connection

SPECS = Path(__file__).parent / "data" / "openlineage"
START = dt.date(2025, 9, 1)
DAYS = 2
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def registry() -> Registry:
    """Every vendored OpenLineage schema, by its `$id`."""
    paths = [SPECS / "OpenLineage.json", *sorted((SPECS / "facets").glob("*.json"))]
    resources = [Resource.from_contents(json.loads(p.read_text(encoding="utf-8"))) for p in paths]
    return Registry().with_resources((r.id(), r) for r in resources)


def schema_errors(event: dict, registry: Registry) -> list[str]:
    """The event against its schemaURL, and every facet against its own `_schemaURL`."""
    def check(instance: dict, url: str, where: str) -> list[str]:
        validator = Draft202012Validator({"$ref": url}, registry=registry)
        return [f"{where}: {e.message}" for e in validator.iter_errors(instance)]

    errors = check(event, event["schemaURL"], event["job"]["name"])
    groups = [("run", event["run"].get("facets")), ("job", event["job"].get("facets"))]
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        for key in ("facets", "inputFacets", "outputFacets"):
            groups.append((f"{dataset['name']} {key}", dataset.get(key)))
    for where, facets in groups:
        for name, facet in (facets or {}).items():
            errors += check(facet, facet["_schemaURL"], f"{where}.{name}")
    return errors


@pytest.fixture(scope="module")
def built(tmp_path_factory, library):
    """A home folder with two generated days, run through every stage in an ephemeral instance."""
    settings = Settings(tmp_path_factory.mktemp("lineage") / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=7, start=START, days=DAYS)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    results = [run_stage(defs, instance, stage) for stage in plan(settings, None, None, list(FEEDS))]
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    return settings, results


@pytest.fixture
def cli(built, monkeypatch):
    settings, _ = built
    monkeypatch.setenv("SHUKU_HOME", str(settings.home))
    return CliRunner()


def test_every_asset_has_start_and_complete_events_that_validate(built, registry):
    settings, _ = built
    events = read_events(settings)
    jobs = {f"ingest_{f.name}" for f in FEEDS} | {f"core.{t}" for t in BUILDERS} | {m.qualified_name for m in discover_models()}
    states: dict[str, list[str]] = {}
    for event in events:
        states.setdefault(event["job"]["name"], []).append(event["eventType"])
        assert event["job"]["namespace"] == "shuku"
        assert schema_errors(event, registry) == []
    assert set(states) == jobs
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


def _edges(model: str) -> set[tuple]:
    sql = next(m.sql for m in discover_models() if m.qualified_name == model)
    lineage = sql_lineage(sql)
    return {(e.output_column, e.input_table, e.input_column, e.type, e.subtype) for e in lineage.edges()}


@pytest.mark.parametrize("model, edge", [
    ("marts.space_utilisation", ("seat_capacity", "core.dim_zone", "seat_capacity", "DIRECT", "IDENTITY")),
    ("marts.space_utilisation", ("occupancy_peak", "core.fact_gate_event", "direction", "DIRECT", "AGGREGATION")),
    ("marts.space_utilisation", ("occupancy_peak", "core.fact_gate_event", "event_at", "INDIRECT", "WINDOW")),
    ("marts.space_utilisation", (None, "core.fact_gate_event", "result", "INDIRECT", "FILTER")),
    ("marts.space_utilisation", (None, "core.fact_gate_event", "event_hour", "INDIRECT", "GROUP_BY")),
    ("core.fact_loan", ("bib_id", "core.dim_item", "bib_id", "DIRECT", "IDENTITY")),
    ("core.fact_loan", ("patron_pid", "staging.circulation_event", "patron_pid", "DIRECT", "IDENTITY")),
    ("core.fact_loan", ("returned_at", "staging.circulation_event", "event_at", "DIRECT", "AGGREGATION")),
    ("core.fact_loan", (None, "core.dim_item", "item_number", "INDIRECT", "JOIN")),
    ("core.dim_item", ("barcode", "staging.item", "barcode", "DIRECT", "IDENTITY")),
    ("core.dim_patron", ("enrolment_year", "staging.patron", "enrolment_year", "DIRECT", "TRANSFORMATION")),
    ("core.dim_title", ("discipline_code", "core.discipline_map", "discipline_code", "DIRECT", "IDENTITY")),
    ("core.dim_title", ("class_number", "staging.bib_record", "clc_class", "DIRECT", "TRANSFORMATION")),
    ("core.fact_counter_usage", ("issn", "staging.counter_usage", "print_issn", "DIRECT", "TRANSFORMATION")),
    ("core.fact_eresource_access", ("event_hour", "staging.ezproxy_access", "accessed_at", "DIRECT", "TRANSFORMATION")),
    ("core.fact_eresource_access", (None, "staging.ezproxy_access", "is_static", "INDIRECT", "FILTER")),
    ("core.fact_gate_count", ("zone_code", "core.dim_gate", "zone_code", "DIRECT", "IDENTITY")),
    ("core.fact_gate_count", ("entries", "staging.gate_count", "counted_at", "INDIRECT", "WINDOW")),
    ("core.fact_gate_event", ("branch_code", "core.dim_gate", "branch_code", "DIRECT", "IDENTITY")),
    ("core.fact_gate_event", (None, "staging.gate_event", "gate_code", "INDIRECT", "JOIN")),
    ("core.fact_search", ("query_normalised", "staging.search", "query_normalised", "DIRECT", "IDENTITY")),
])
def test_sqlglot_column_lineage_of_each_model(model, edge):
    assert edge in _edges(model)


# Written as a literal in each branch of a union: no input column, only the rows' filters.
CONSTANT_COLUMNS = {"core.dim_title.classification_scheme"}


def test_every_model_has_lineage_for_every_output_column():
    for model in discover_models():
        lineage = sql_lineage(model.sql)
        assert set(lineage.fields) == set(contract_for(model.qualified_name).column_names), model.qualified_name
        empty = {f"{model.qualified_name}.{c}" for c, edges in lineage.fields.items() if not edges}
        assert empty <= CONSTANT_COLUMNS, empty


def test_a_hashed_key_is_masking_and_a_copy_is_not():
    fact_loan = {(e.output_column, e.input_column): e.masking for e in sql_lineage(
        next(m.sql for m in discover_models() if m.name == "fact_loan")).edges()}
    assert fact_loan[("loan_id", "item_number")] is True
    assert fact_loan[("patron_pid", "patron_pid")] is False


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
    turnstile = sorted(n for n in landing if n.startswith("gates/turnstile_") and n.endswith(".csv.gz"))
    assert turnstile == [f"gates/turnstile_2025-09-0{d}.csv.gz" for d in (1, 2)]
    for name in turnstile:
        data = (settings.landing / name).read_bytes()
        assert landing[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert landing[name]["bytes"] == len(data) and landing[name]["ingested_at"]
    assert all(h["run_id"] and h["row_count"] for h in trace["hops"])

    text = cli.invoke(main, ["trace", "marts.space_utilisation.occupancy_peak"])
    assert text.exit_code == 0, text.output
    assert "← core.fact_gate_event.direction [DIRECT AGGREGATION]" in text.output
    assert "gates/turnstile_2025-09-01.csv.gz  sha256 " in text.output


def test_trace_of_one_partition_and_downstream(cli):
    one = json.loads(cli.invoke(main, ["trace", "marts.space_utilisation.occupancy_peak", "--partition", "2025-09-02",
                                       "--format", "json"]).stdout)
    assert [f["file"] for f in one["landing_files"] if f["file"].startswith("gates/")] == ["gates/turnstile_2025-09-02.csv.gz"]
    down = json.loads(cli.invoke(main, ["trace", "staging.gate_event.direction", "--downstream", "--format", "json"]).stdout)
    reached = {f"{h['dataset']}.{h['column']}" for h in down["hops"]}
    assert {"core.fact_gate_event.direction", "marts.space_utilisation.occupancy_peak"} <= reached


def test_trace_of_an_unknown_column_is_a_usage_error(cli):
    result = cli.invoke(main, ["trace", "marts.space_utilisation.occupancy"])
    assert result.exit_code == 2
    assert "has no column 'occupancy'" in result.output and "occupancy_peak" in result.output


def test_lineage_page_renders_the_graph_in_headless_chromium(built, cli, tmp_path):
    out = tmp_path / "lineage.html"
    result = cli.invoke(main, ["lineage", "page", "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    if not CHROMIUM.exists():
        # Debian's package, as .ci/run installs it; never a silent skip.
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    dom = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
         "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    for table in ("staging.gate_event", "core.fact_gate_event", "marts.space_utilisation", "gates/turnstile_*.csv.gz"):
        assert f'id="table-{table}"' in dom, table
    assert "<svg" in dom and "core.fact_gate_event.direction" in dom


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def _observe_one(settings: Settings, job: str = "core.dim_zone") -> None:
    with observe(settings, job=job, run_id="7b0a2f0c-8d1e-4c57-9a3e-0f5a1c2d3e4f", inputs=[],
                 outputs=["core.dim_zone"]) as observation:
        observation.add_output("core.dim_zone", rows=6, bytes=1000, files=1)


def test_http_transport_posts_every_event_and_the_file_keeps_them(tmp_path, monkeypatch):
    _Collector.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_address[1]}")
        settings = Settings(tmp_path / "home").ensure()
        _observe_one(settings)
    finally:
        server.shutdown()
        server.server_close()
    assert [(p, e["eventType"]) for p, e in _Collector.received] == [("/api/v1/lineage", "START"),
                                                                    ("/api/v1/lineage", "COMPLETE")]
    assert [e["eventType"] for e in read_events(settings)] == ["START", "COMPLETE"]


def test_a_server_that_is_down_costs_a_warning_not_the_run(tmp_path, monkeypatch, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{port}")
    settings = Settings(tmp_path / "home").ensure()
    with caplog.at_level(logging.WARNING, logger="shuku.lineage"):
        _observe_one(settings)
    assert "did not take the event" in caplog.text and str(events_path(settings)) in caplog.text
    assert [e["eventType"] for e in read_events(settings)] == ["START", "COMPLETE"]


def test_an_exception_emits_fail_with_the_error_and_is_raised_again(tmp_path, registry):
    settings = Settings(tmp_path / "home").ensure()
    with pytest.raises(RuntimeError, match="zone table could not be written"):
        with observe(settings, job="core.dim_zone", run_id="run-1", inputs=[], outputs=["core.dim_zone"]):
            raise RuntimeError("zone table could not be written")
    start, fail = read_events(settings)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    error = fail["run"]["facets"]["errorMessage"]
    assert error["message"] == "RuntimeError: zone table could not be written"
    assert error["programmingLanguage"] == "python" and "Traceback" in error["stackTrace"]
    assert schema_errors(fail, registry) == []


def test_a_damaged_landing_file_fails_its_asset_with_a_fail_event(built):
    settings, _ = built
    damaged = settings.landing / "circulation" / "statistics_2025-09-02.csv.gz"
    damaged.write_bytes(b"\x1f\x8b\x08\x00broken")
    try:
        stages = plan(settings, None, None, [feed_named("circulation")], models=False)
        results = [run_stage(build_definitions(settings), dg.DagsterInstance.ephemeral(), s) for s in stages]
        assert not results[-1].success
    finally:
        damaged.unlink()
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
