"""An outside oracle for the contracts: datacontract-cli (its own .venv-datacontract, `make test` installs
it) tests every exported staging, core and mart contract against a tiny library's lake built by the
real pipeline; the exporter itself is checked without the pipeline."""

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from pipelines.cli import main
from schemas.export import EXPORTED_LAYERS
from schemas.model import _odcs_validator, contract_for, load_contracts
from warehouse.lake.partitions import write_partition
from warehouse.lake.views import compute_connection
from warehouse.lake_contracts import export_contracts
from warehouse.settings import REPO_ROOT, Settings

from tests.published import published_home

DATACONTRACT = REPO_ROOT / ".venv-datacontract" / "bin" / "datacontract"

# datacontract-cli 1.2.8 checks no column type of a Parquet file: each type check is a warning saying so.
TYPES_NOT_CHECKED = "Checking types in parquet files is not supported yet."


def _exported_layers() -> dict:
    return {name: c for name, c in load_contracts().items() if c.layer in EXPORTED_LAYERS}


def test_export_points_each_contract_at_its_parquet_files_and_leaves_schemas_alone(tmp_path):
    settings = Settings(tmp_path / "home").ensure()
    originals = {c.path: c.path.read_bytes() for c in load_contracts().values()}
    gate = contract_for("staging.gate_event")
    write_partition(settings, gate, "2025-09-01", gate.empty_frame())
    written = CliRunner().invoke(main, ["contracts", "export", "--out", str(tmp_path / "out"),
                                        "--home", str(settings.home)])
    assert written.exit_code == 0, written.output

    files = sorted((tmp_path / "out").glob("*/*.odcs.yaml"))
    assert {f"{f.parent.name}.{f.name.removesuffix('.odcs.yaml')}" for f in files} == set(_exported_layers())
    assert {c.path: c.path.read_bytes() for c in load_contracts().values()} == originals
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        table = document["schema"][0]
        assert table["physicalName"] == path.name.removesuffix(".odcs.yaml") == table["name"]
        [server] = document["servers"]
        assert (server["type"], server["format"]) == ("local", "parquet")
        assert server["path"].startswith(str(settings.lake / path.parent.name / table["name"]) + "/")
        assert all(p["physicalType"] not in ("TIMESTAMP", "VARCHAR[]") for p in table["properties"])

    # Still valid ODCS where the export changed types, and on a partitioned table (1.3 s for all of them).
    for name in ("staging/bib_record", "core/fact_loan", "staging/gate_event"):
        document = yaml.safe_load((tmp_path / "out" / f"{name}.odcs.yaml").read_text(encoding="utf-8"))
        assert not list(_odcs_validator().iter_errors(document)), name
    # The glob finds the files the pipeline writes, partitioned or not, and nothing else.
    gate_glob = yaml.safe_load((tmp_path / "out/staging/gate_event.odcs.yaml").read_text())["servers"][0]["path"]
    assert [p.relative_to(settings.lake) for p in Path("/").glob(gate_glob.lstrip("/"))] == [
        Path("staging/gate_event/event_date=2025-09-01/part-0.parquet")]
    bib = yaml.safe_load((tmp_path / "out/staging/bib_record.odcs.yaml").read_text())["schema"][0]
    subjects = next(p for p in bib["properties"] if p["name"] == "subjects")
    assert (subjects["physicalType"], subjects["items"]["physicalType"]) == ("array", "VARCHAR")
    loan = yaml.safe_load((tmp_path / "out/core/fact_loan.odcs.yaml").read_text())["schema"][0]
    assert next(p for p in loan["properties"] if p["name"] == "issued_at")["physicalType"] == "timestamp_ntz"


def _validator_env(tmp: Path) -> dict[str, str]:
    """datacontract-cli never calls out: it publishes results only when given --publish (never here), its
    config and .env come from HOME and the working folder (both empty temporary folders here), and any
    HTTP request it would make anyway goes to a closed port on 127.0.0.1 and fails."""
    dead = "http://127.0.0.1:9"
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "LANG": "C.UTF-8",
            "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead,
            "NO_PROXY": "", "no_proxy": "", "DO_NOT_TRACK": "1"}


def _datacontract_test(path: Path, tmp: Path) -> tuple[int, dict, str]:
    """`datacontract test FILE`: exit code, its JSON result, its console output."""
    result = tmp / (path.parent.name + "." + path.name + ".json")
    done = subprocess.run([str(DATACONTRACT), "test", str(path), "--output-format", "json", "--output", str(result)],
                          cwd=tmp, env=_validator_env(tmp), capture_output=True, text=True, timeout=300)
    return done.returncode, json.loads(result.read_text(encoding="utf-8")), done.stdout + done.stderr


def _failures(report: dict) -> list[str]:
    return [f"{c['name']}: {c['result']} {c.get('reason')}" for c in report["checks"]
            if not (c["result"] == "passed" or (c["result"] == "warning" and c.get("reason") == TYPES_NOT_CHECKED))]


@pytest.fixture(scope="module")
def lake(tmp_path_factory, library):
    if not DATACONTRACT.exists():
        pytest.fail(f"{DATACONTRACT} is missing: `make test` installs it (requirements-datacontract.lock)")
    return published_home(tmp_path_factory, library)   # the session's tiny two-day home, read only


@pytest.mark.slow
def test_datacontract_cli_passes_every_check_of_every_table(lake, tmp_path):
    exported = export_contracts(lake, tmp_path / "contracts")
    assert {e.table for e in exported} == set(_exported_layers()) and all(e.has_data for e in exported)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip([e.table for e in exported],
                        pool.map(lambda e: _datacontract_test(e.path, tmp_path), exported)))
    for table, (code, report, output) in runs.items():
        assert code == 0 and report["result"] in ("passed", "warning"), (table, output[-2000:])
        assert _failures(report) == [], table
        assert {c["type"] for c in report["checks"] if c["result"] == "warning"} <= {"field_type"}, table
        # It read the contract as we do (every column, each required, unique and allowed-values rule) and
        # found every column in the files: the checks ran on the data, not on an empty view.
        contract = contract_for(table)
        ran = {kind: {c["field"] for c in report["checks"] if c["type"] == kind and c["result"] == "passed"}
               for kind in ("field_is_present", "field_required", "field_unique", "field_invalid_values")}
        assert ran == {"field_is_present": set(contract.column_names),
                       "field_required": {c.name for c in contract.columns if c.required},
                       "field_unique": {c.name for c in contract.columns if c.unique},
                       "field_invalid_values": {c.name for c in contract.columns if c.allowed_values}}, table
        row_count_rules = [q for q in contract.model.schema_[0].quality or () if q.metric == "rowCount"]
        row_counts = [c for c in report["checks"] if c["type"] == "row_count" and c["result"] == "passed"]
        assert len(row_counts) == len(row_count_rules), table


@pytest.mark.slow
def test_datacontract_cli_fails_a_table_that_breaks_its_contract(lake, tmp_path):
    """The control: a value outside a column's allowed set, and a missing required value, fail their checks."""
    home = Settings(tmp_path / "broken").ensure()
    contract = contract_for("staging.gate_event")
    con = compute_connection(lake)
    frame = con.sql("SELECT * FROM staging.gate_event WHERE event_date = DATE '2025-09-02'").pl()
    con.close()
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("SIDEWAYS")).otherwise(pl.col("direction")).alias("direction"),
        pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("gate_code")).alias("gate_code"))
    write_partition(home, contract, "2025-09-02", broken)
    [exported] = export_contracts(home, tmp_path / "contracts", {contract.qualified_name: contract})
    code, report, output = _datacontract_test(exported.path, tmp_path)
    assert code != 0 and report["result"] == "failed", output[-2000:]
    failed = {(c["field"], c["type"]) for c in report["checks"] if c["result"] == "failed"}
    assert {field for field, _ in failed} == {"direction", "gate_code"}, failed


@pytest.mark.slow
def test_the_duckdb_list_spelling_is_what_stops_datacontract_cli_on_bib_record(lake, tmp_path):
    """Why the export writes `array` for `VARCHAR[]`: with our spelling kept, datacontract-cli 1.2.8 maps the
    column to no type and its CREATE TABLE fails on the text None, so no check of the table runs (checked with
    datacontract-cli 1.2.8: when a release reads DuckDB's spelling, this fails and the translation can go)."""
    contract = contract_for("staging.bib_record")
    [exported] = export_contracts(lake, tmp_path / "contracts", {contract.qualified_name: contract})
    document = yaml.safe_load(exported.path.read_text(encoding="utf-8"))
    subjects = next(p for p in document["schema"][0]["properties"] if p["name"] == "subjects")
    subjects["physicalType"] = contract.column("subjects").physical_type
    exported.path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    code, report, output = _datacontract_test(exported.path, tmp_path)
    assert code != 0 and report["result"] == "failed", output[-2000:]
    failed = [(c["type"], c["reason"]) for c in report["checks"] if c["result"] == "failed"]
    assert failed == [("general", 'Parser Error: syntax error at or near "None"')]
    assert not any(c["result"] == "passed" for c in report["checks"])     # none of its checks ran
