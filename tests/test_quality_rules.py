"""Quality rules on hand-written rows: the suites generated from contracts (one expectation per
rule, compound keys, severities) and each hand-written SQL rule failing on corrupt rows and passing
on clean ones."""

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from quality.checks import check_specs
from quality.rules import RULES, rule_context, run_rule
from quality.suites import build_suite, contract_expectations
from schemas.model import contract_for, load_contract
from warehouse.lake.views import compute_connection
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

CARD = "2024030006"


def test_suite_from_gate_event_contract_has_one_expectation_per_rule():
    suite = build_suite(contract_for("staging.gate_event"))
    found = {(type(e).__name__, getattr(e, "column", None)) for e in suite.expectations}
    assert {("ExpectColumnValuesToNotBeNull", "event_at"), ("ExpectColumnValuesToNotBeNull", "direction"),
            ("ExpectColumnValuesToBeInSet", "direction"), ("ExpectColumnValuesToBeInSet", "result"),
            ("ExpectColumnValuesToMatchRegex", "patron_pid"), ("ExpectColumnValuesToBeBetween", "pid_key_version"),
            ("ExpectColumnValuesToBeBetween", "source_line"), ("ExpectTableRowCountToBeBetween", None)} <= found
    # The partition column comes from the folder name: nothing to check in the rows.
    assert all(getattr(e, "column", None) != "event_date" for e in suite.expectations)
    by_name = {e.meta["check"]: e for e in suite.expectations}
    assert list(by_name["in_set__direction"].value_set) == ["IN", "OUT"]
    assert by_name["matches__patron_pid"].regex == "^[0-9a-f]{64}$"
    assert by_name["between__pid_key_version"].min_value == 1
    # ODCS `metric: rowCount, mustBeGreaterThan: 0` at table level.
    assert (by_name["row_count"].min_value, by_name["row_count"].strict_min, by_name["row_count"].max_value) == (0, True, None)
    assert build_suite(contract_for("staging.gate_event")) is suite   # built once per contract and process
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


def _circulation(event_type: str, day: int, line: int) -> dict:
    return {"event_at": dt.datetime(2025, 9, day, 10), "event_date": dt.date(2025, 9, day), "branch_code": "MAIN",
            "event_type": event_type, "item_number": 7, "source_file": "circulation/s.csv", "source_line": line}


def _gate(direction: str, minute: int, line: int) -> dict:
    return {"event_at": dt.datetime(2025, 9, 1, 9, minute), "event_date": dt.date(2025, 9, 1), "gate_code": "MAIN-G1",
            "direction": direction, "result": "PASS", "patron_pid": "KNOWN", "source_file": "gates/t.csv",
            "source_line": line}


def _hour(peak: int) -> dict:
    return {"event_date": dt.date(2025, 9, 1), "event_hour": 9, "zone_code": "MAIN-READ", "occupancy_peak": peak,
            "seat_capacity": 100}

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
    ("renewal_on_open_loan", "staging.circulation_event",
     [_circulation("issue", 1, 2), _circulation("renew", 2, 3), _circulation("return", 3, 4)],
     [_circulation("issue", 1, 2), _circulation("return", 2, 3), _circulation("renew", 3, 4)]),
    ("occupancy_within_limit", "marts.space_utilisation", [_hour(0), _hour(200)], [_hour(201)]),
    ("out_after_in", "staging.gate_event", [_gate("IN", 10, 2), _gate("OUT", 5, 3), _gate("OUT", 30, 4)],
     [_gate("OUT", 10, 2), _gate("IN", 30, 3)]),
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
        if table in rule.reads:   # the rule reads its own table's history as well
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {label}_rows")
        context = rule_context(con, settings, contract, f"{label}_rows")
        outcomes[label] = run_rule(con, rule, contract, f"{label}_rows", context)
    con.close()
    assert outcomes["clean"] == (0, [])
    count, sample = outcomes["corrupt"]
    assert count == 1 and len(sample) == 1
    assert CARD not in sample[0] and "@" not in sample[0] and "13912345678" not in sample[0]
