"""Quality checks: suites generated from contracts, hand-written SQL rules, and blocking asset checks
in a real Dagster run on a tiny generated library (2 days)."""

import csv
import datetime as dt
import shutil

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from assets.feeds import FEEDS
from generator import generate
from pipelines.cli import main
from pipelines.definitions import MODELS_JOB, build_definitions
from pipelines.runner import Stage, plan, run_stage
from quality.checks import check_specs, evaluate, planned_checks
from quality.rules import RULES, register_card_lookup, run_rule
from quality.suites import build_suite, contract_expectations
from warehouse.contracts import contract_for, load_contract
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings
from warehouse.storage import compute_connection, write_partition

START = dt.date(2025, 9, 1)
CARD = "2024030006"


def test_suite_from_gate_event_contract_has_one_expectation_per_rule():
    suite = build_suite(contract_for("staging.gate_event"))
    found = {(type(e).__name__, e.column) for e in suite.expectations}
    assert {("ExpectColumnValuesToNotBeNull", "event_at"), ("ExpectColumnValuesToNotBeNull", "direction"),
            ("ExpectColumnValuesToBeInSet", "direction"), ("ExpectColumnValuesToBeInSet", "result"),
            ("ExpectColumnValuesToMatchRegex", "patron_pid"), ("ExpectColumnValuesToBeBetween", "pid_key_version"),
            ("ExpectColumnValuesToBeBetween", "source_line")} <= found
    # The partition column comes from the folder name: nothing to check in the rows.
    assert all(e.column != "event_date" for e in suite.expectations)
    by_name = {e.meta["check"]: e for e in suite.expectations}
    assert list(by_name["in_set__direction"].value_set) == ["IN", "OUT"]
    assert by_name["matches__patron_pid"].regex == "^[0-9a-f]{64}$"
    assert by_name["between__pid_key_version"].min_value == 1
    assert len(suite.expectations) == len(contract_expectations(contract_for("staging.gate_event")))


def test_unique_key_compound_key_and_warn_severity(tmp_path):
    assert "unique__loan_id" in {e.name for e in contract_expectations(contract_for("core.fact_loan"))}
    text = contract_for("staging.gate_event").path.read_text(encoding="utf-8")
    text = text.replace("  - name: event_at\n", "  - name: event_at\n    primaryKey: true\n    primaryKeyPosition: 1\n")
    text = text.replace("  - name: gate_code\n", "  - name: gate_code\n    primaryKey: true\n    primaryKeyPosition: 2\n")
    text = text.replace("mustBe: 0\n      severity: error", "mustBe: 0\n      severity: warn", 1)
    path = tmp_path / "staging" / "gate_event.odcs.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    contract = load_contract(path)
    rules = {e.name: e for e in contract_expectations(contract)}
    assert rules["unique__event_at__gate_code"].expectation == "ExpectCompoundColumnsToBeUnique"
    assert rules["unique__event_at__gate_code"].kwargs == {"column_list": ["event_at", "gate_code"]}
    assert "unique__event_at" not in rules
    assert rules["in_set__direction"].severity == "warn" and rules["in_set__result"].severity == "error"
    specs = {s.name: s for s in check_specs(contract)}
    assert specs["in_set__direction"].blocking is False and specs["in_set__result"].blocking is True
    assert specs["no_card_numbers"].blocking is True
    assert specs["in_set__direction"].asset_key == dg.AssetKey(["staging", "gate_event"])
    assert specs["no_card_numbers"].description


def _counter_row(metric: str, count: int) -> dict:
    return {"usage_month": dt.date(2025, 9, 1), "release": "5", "report_id": "TR", "title": "Journal of Tests",
            "metric_type": metric, "usage_count": count, "source_file": "counter/tr.tsv", "source_line": 1}


def _loan(**values) -> dict:
    return {"loan_id": "L1", "item_number": 1, "branch_code": "MAIN", "item_known": True,
            "issued_at": dt.datetime(2025, 9, 1, 10), "returned_at": dt.datetime(2025, 9, 3, 10), **values}


PID_WITH_DIGITS = ("ab13912345678" + "0" * 51)

RULE_CASES = [
    # rule, table, clean rows, corrupt rows
    ("return_after_issue", "core.fact_loan", [_loan(), _loan(loan_id="L2", returned_at=None)],
     [_loan(returned_at=dt.datetime(2025, 8, 31))]),
    ("counter_unique_within_total", "staging.counter_usage",
     [_counter_row("Unique_Item_Requests", 3), _counter_row("Total_Item_Requests", 5)],
     [_counter_row("Unique_Item_Requests", 6), _counter_row("Total_Item_Requests", 5)]),
    ("counter_requests_within_investigations", "core.fact_counter_usage",
     [_counter_row("Total_Item_Requests", 5), _counter_row("Total_Item_Investigations", 9)],
     [_counter_row("Total_Item_Requests", 5), _counter_row("Total_Item_Investigations", 4)]),
    ("item_in_dim_item", "core.fact_loan", [_loan(), _loan(loan_id="L2", item_number=99, item_known=False)],
     [_loan(item_number=99)]),
    ("gate_in_dim_gate", "core.fact_gate_event", [{"event_at": dt.datetime(2025, 9, 1), "gate_code": "G1"}],
     [{"event_at": dt.datetime(2025, 9, 1), "gate_code": "G9"}]),
    ("patron_in_dim_patron", "core.fact_search", [{"session_id": "s1", "patron_pid": "KNOWN"}],
     [{"session_id": "s1", "patron_pid": "f" * 64}]),
    ("no_card_numbers", "staging.search",
     [{"session_id": "5312974374", "query_text": "history 1840-1911"}, {"session_id": "s", "patron_pid": "KNOWN"}],
     [{"session_id": "s", "query_text": f"my card {CARD}"}]),
    ("no_email_addresses", "staging.search", [{"session_id": "s", "query_text": "email marketing"}],
     [{"session_id": "s", "query_text": "mail me at wang.li@example.edu.cn"}]),
    ("no_phone_numbers", "core.fact_search",
     [{"session_id": PID_WITH_DIGITS + "|2025-09-01 15", "patron_pid": PID_WITH_DIGITS}],
     [{"session_id": "s", "query_normalised": "call 13912345678"}]),
]


@pytest.mark.parametrize("rule_name, table, clean, corrupt", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_hand_written_rule_fails_on_corrupt_rows_and_passes_on_clean(rule_name, table, clean, corrupt, tmp_path):
    settings = Settings(tmp_path / "home").ensure()
    known_pid = Pseudonymiser.load(settings.secrets_dir).pid(CARD)
    contract = contract_for(table)
    rule = next(r for r in RULES if r.name == rule_name)
    con = compute_connection(settings)
    con.execute("CREATE OR REPLACE VIEW core.dim_item AS SELECT 1::BIGINT AS item_number")
    con.execute("CREATE OR REPLACE VIEW core.dim_gate AS SELECT 'G1' AS device_code")
    con.execute(f"CREATE OR REPLACE VIEW core.dim_patron AS SELECT '{known_pid}' AS patron_pid")
    outcomes = {}
    for label, rows in (("clean", clean), ("corrupt", corrupt)):
        rows = [{k: known_pid if v == "KNOWN" else v for k, v in row.items()} for row in rows]
        frame = pl.DataFrame(rows, schema=contract.polars_schema())
        con.register(f"{label}_rows", frame.to_arrow())
        context = register_card_lookup(con, settings, contract, f"{label}_rows")
        outcomes[label] = run_rule(con, rule, contract, f"{label}_rows", context)
    con.close()
    assert outcomes["clean"] == (0, [])
    count, sample = outcomes["corrupt"]
    assert count == 1 and len(sample) == 1
    assert CARD not in sample[0] and "@" not in sample[0] and "13912345678" not in sample[0]


def _run_all(settings: Settings, instance: dg.DagsterInstance) -> list:
    defs = build_definitions(settings)
    return [run_stage(defs, instance, stage) for stage in plan(settings, None, None, list(FEEDS))]


@pytest.fixture(scope="module")
def built(tmp_path_factory, library):
    settings = Settings(tmp_path_factory.mktemp("quality") / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=7, start=START, days=2)
    instance = dg.DagsterInstance.ephemeral()
    return settings, instance, _run_all(settings, instance)


def _copy_home(settings: Settings, tmp_path, monkeypatch) -> Settings:
    copy = Settings(tmp_path / "copy").ensure()
    shutil.copytree(settings.home, copy.home, dirs_exist_ok=True)
    monkeypatch.setenv("SHUKU_HOME", str(copy.home))
    return copy


def test_every_check_passes_on_a_clean_run_and_is_recorded(built):
    settings, instance, results = built
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    evaluations = [e for r in results for e in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    assert evaluations and all(e.dagster_event.event_specific_data.passed for e in evaluations)
    con = compute_connection(settings)
    rows = con.execute("SELECT table_name, check_name, success, partition_key, unexpected_sample "
                       "FROM meta.quality_results").fetchall()
    con.close()
    tables = {table for table, *_ in rows}
    assert {f"staging.{t}" for f in FEEDS for t in f.tables} | {"core.fact_loan", "marts.space_utilisation"} <= tables
    assert len(rows) == len(evaluations) == sum(len(planned_checks(contract_for(t))) for t in tables)
    assert all(success for _, _, success, _, _ in rows)
    assert ("staging.gate_event", "in_set__direction", True, "2025-09-01..2025-09-02", "[]") in rows
    assert CliRunner().invoke(main, ["quality"], env={"SHUKU_HOME": str(settings.home)}).exit_code == 0


def test_a_bad_direction_in_a_staging_partition_fails_its_check(built, tmp_path, monkeypatch):
    settings = _copy_home(built[0], tmp_path, monkeypatch)
    contract = contract_for("staging.gate_event")
    con = compute_connection(settings)
    frame = con.sql("SELECT * FROM staging.gate_event WHERE event_date = DATE '2025-09-02'").pl()
    con.close()
    write_partition(settings, contract, "2025-09-02",
                    frame.with_columns(pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("SIDEWAYS"))
                                       .otherwise(pl.col("direction")).alias("direction")))
    results = {r.check_name: r for r in evaluate(contract, settings, run_id="manual", partition_keys=["2025-09-02"])}
    failed = results["in_set__direction"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["unexpected_count"].value == 3
    assert failed.metadata["partitions"].value == "2025-09-02"
    assert all("direction=SIDEWAYS" in s and ".csv" in s for s in failed.metadata["sample"].value)
    assert sum(1 for r in results.values() if not r.passed) == 1


def test_a_card_number_in_staging_blocks_the_marts_and_shows_in_shuku_quality(built, tmp_path, monkeypatch):
    settings = _copy_home(built[0], tmp_path, monkeypatch)
    with next(settings.landing.glob("patrons/*.csv")).open(encoding="gb18030") as fh:
        card = next(csv.DictReader(fh))["cardnumber"]
    contract = contract_for("staging.gate_event")
    con = compute_connection(settings)
    frame = con.sql("SELECT * FROM staging.gate_event WHERE event_date = DATE '2025-09-01'").pl()
    con.close()
    write_partition(settings, contract, "2025-09-01", frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(pl.lit(card)).otherwise(pl.col("gate_code")).alias("gate_code")))

    instance = dg.DagsterInstance.ephemeral()
    result = run_stage(build_definitions(settings), instance, Stage("models", MODELS_JOB, [], None))
    assert not result.success
    assert "no_card_numbers" in result.error
    materialised = {e.dagster_event.asset_key.to_user_string()
                    for e in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    assert "core/fact_gate_event" in materialised and "core/fact_loan" in materialised
    assert "marts/space_utilisation" not in materialised

    con = compute_connection(settings)
    failing = con.execute("SELECT check_name, unexpected_count, unexpected_sample FROM meta.quality_results "
                          "WHERE run_id = ? AND NOT success ORDER BY check_name", [result.run_id]).fetchall()
    con.close()
    assert [(name, count) for name, count, _ in failing] == [("gate_in_dim_gate", 2), ("no_card_numbers", 2)]
    assert all(card not in sample for _, _, sample in failing)

    shown = CliRunner().invoke(main, ["quality", "fact_gate_event"], env={"SHUKU_HOME": str(settings.home)})
    assert shown.exit_code == 1, shown.output
    assert "no_card_numbers" in shown.output and "core.fact_gate_event" in shown.output
    assert "lake/core/fact_gate_event" in shown.output and card not in shown.output
    assert CliRunner().invoke(main, ["quality", "staging.gate_event"],
                              env={"SHUKU_HOME": str(settings.home)}).exit_code == 0
