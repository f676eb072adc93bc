"""Reconciliation rules on hand-built rows: each identity holds on rows that agree, up to the contract's
tolerance exactly, and fails one step beyond it, naming the day, platform or zone."""

import datetime as dt

import polars as pl
import pytest

from quality.reconciliation import gate_tolerance, pr_dr_tolerance
from quality.rules import PHYSICAL_LIMIT_PER_SEAT, RULES, run_rule
from schemas.model import contract_for
from warehouse.lake.views import compute_connection
from warehouse.settings import Settings

DAY = dt.date(2025, 9, 2)


def _run(tmp_path, rule_name: str, table: str, rows: list[dict], others: dict[str, list[dict]]) -> tuple[int, list]:
    """Run one rule on ``rows`` of ``table``, with the tables it reads holding ``others``."""
    rule = next(r for r in RULES if r.name == rule_name)
    con = compute_connection(Settings(tmp_path / "home").ensure())
    for name, other in others.items():
        frame = pl.DataFrame(other, schema=contract_for(name).polars_schema())
        con.register(name.replace(".", "_") + "_rows", frame.to_arrow())
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {name.replace('.', '_')}_rows")
    contract = contract_for(table)
    con.register("checked_rows", pl.DataFrame(rows, schema=contract.polars_schema()).to_arrow())
    try:
        return run_rule(con, rule, contract, "checked_rows", {})
    finally:
        con.close()


def _issue(day: int, line: int) -> dict:
    return {"event_at": dt.datetime(2025, 9, day, 10, line), "event_date": dt.date(2025, 9, day), "branch_code": "MAIN",
            "event_type": "issue", "item_number": line, "source_file": "circulation/s.csv", "source_line": line}


def _loan(day: int, n: int) -> dict:
    return {"loan_id": f"L{day}-{n}", "item_number": n, "branch_code": "MAIN", "item_known": True,
            "issued_at": dt.datetime(2025, 9, day, 10, n), "issue_date": dt.date(2025, 9, day)}


def test_loans_match_the_issue_events_of_each_day(tmp_path):
    issues = [_issue(1, 1), _issue(1, 2), _issue(2, 3), {**_issue(2, 4), "event_type": "return"}]
    loans = [_loan(1, 1), _loan(1, 2), _loan(2, 3)]
    others = {"staging.circulation_event": issues}
    assert _run(tmp_path, "loans_match_issue_events", "core.fact_loan", loans, others) == (0, [])
    assert _run(tmp_path, "loans_match_issue_events", "core.fact_loan", loans[:2], others) == (
        1, ["2025-09-02: 0 loans, 1 issue events"])
    assert _run(tmp_path, "loans_match_issue_events", "core.fact_loan", loans + [_loan(3, 9)], others) == (
        1, ["2025-09-03: 1 loans, 0 issue events"])


def _usage(report: str, platform: str, metric: str, count: int, database: str | None = None) -> dict:
    return {"usage_month": dt.date(2025, 9, 1), "release": "5.1", "report_id": report, "platform": platform,
            "database": database, "metric_type": metric, "usage_count": count, "source_file": "counter/x",
            "source_line": 1}


@pytest.mark.parametrize("table", ["staging.counter_usage", "core.fact_counter_usage"])
def test_platform_report_totals_match_the_sum_of_the_database_report(tmp_path, table):
    tolerance = pr_dr_tolerance()
    pr_total = 1000
    allowed = int(-(-tolerance * pr_total // 1))      # the share of the PR total, rounded up
    assert allowed >= 1

    def reports(dr_investigations: int, dr_requests: int = 400) -> list[dict]:
        return [_usage("PR", "CNKI", "Total_Item_Investigations", pr_total),
                _usage("PR", "CNKI", "Total_Item_Requests", 400),
                _usage("PR", "CNKI", "Searches_Platform", 77),
                _usage("DR", "CNKI", "Total_Item_Investigations", dr_investigations - 300, "Journals"),
                _usage("DR", "CNKI", "Total_Item_Investigations", 300, "Theses"),
                _usage("DR", "CNKI", "Total_Item_Requests", dr_requests, "Journals"),
                _usage("DR", "CNKI", "Searches_Regular", 5, "Journals"),
                # A platform that sent only a PR has nothing to be reconciled with.
                _usage("PR", "Wanfang Data", "Total_Item_Requests", 50),
                # Title metrics of a TR do not count.
                {**_usage("TR", "CNKI", "Total_Item_Investigations", 999), "title": "A journal"}]

    def run(rows):
        return _run(tmp_path, "counter_pr_matches_dr", table, rows, {})

    assert run(reports(pr_total)) == (0, [])
    assert run(reports(pr_total + allowed)) == (0, [])
    assert run(reports(pr_total - allowed)) == (0, [])
    assert run(reports(pr_total - allowed - 1)) == (
        1, [f"2025-09 CNKI Total_Item_Investigations: PR {pr_total}, DR rows add up to {pr_total - allowed - 1}"])
    # A DR without any request rows: the PR's requests are all missing from it.
    rows = [r for r in reports(pr_total) if not (r["report_id"] == "DR" and r["metric_type"] == "Total_Item_Requests")]
    assert run(rows) == (1, ["2025-09 CNKI Total_Item_Requests: PR 400, DR rows add up to 0"])


def _pass(zone: str, minute: int, direction: str, result: str = "PASS") -> dict:
    return {"event_at": dt.datetime(2025, 9, 2, 8, 0) + dt.timedelta(minutes=minute), "event_date": DAY,
            "event_hour": 8, "gate_code": "G", "zone_code": zone, "branch_code": "MAIN", "direction": direction,
            "result": result}


def test_gate_balance_stays_within_the_zone(tmp_path):
    people, share = gate_tolerance()
    zones = {"core.dim_zone": [{"zone_code": "PC", "zone_name": "PCs", "branch_code": "MAIN", "seat_capacity": 3}]}
    entries = 100
    missed = int(-(-share * entries // 1))
    # `entries` readers come and go; then readers already inside at opening (and missed entries) leave.
    visits = [_pass("PC", i, d) for i in range(entries) for d in ("IN", "OUT")]

    def leaving(n: int) -> list[dict]:
        return [_pass("PC", 500 + i, "OUT") for i in range(n)]

    def run(rows):
        return _run(tmp_path, "gate_balance_within_zone", "core.fact_gate_event", rows, zones)

    assert run(visits + leaving(people + missed)) == (0, [])
    lowest = -(people + missed + 1)
    assert run(visits + leaving(people + missed + 1)) == (
        1, [f"PC 2025-09-02: IN - OUT fell to {lowest} < {-(people + missed)}"])
    # Refused swipes do not move anyone.
    assert run(visits + [_pass("PC", 600 + i, "OUT", "DENY") for i in range(50)]) == (0, [])
    limit = PHYSICAL_LIMIT_PER_SEAT * 3
    crowd = [_pass("PC", 700 + i, "IN") for i in range(limit)]
    assert run(crowd) == (0, [])
    assert run(crowd + [_pass("PC", 800, "IN")]) == (1, [f"PC 2025-09-02: IN - OUT reached {limit + 1} > {limit}"])


def test_utilisation_entries_and_exits_match_the_gate_passages(tmp_path):
    passages = [_pass("READ", 1, "IN"), _pass("READ", 2, "IN"), _pass("READ", 70, "OUT"),
                _pass("READ", 3, "IN", "DENY"), _pass("PC", 4, "IN")]
    hours = [{"event_date": DAY, "event_hour": 8, "zone_code": "READ", "entries": 2, "exits": 0},
             {"event_date": DAY, "event_hour": 9, "zone_code": "READ", "entries": 0, "exits": 1},
             {"event_date": DAY, "event_hour": 8, "zone_code": "PC", "entries": 1, "exits": 0}]
    others = {"core.fact_gate_event": passages}

    def run(rows):
        return _run(tmp_path, "utilisation_matches_passages", "marts.space_utilisation", rows, others)

    assert run(hours) == (0, [])
    assert run(hours[:2] + [{**hours[2], "exits": 1}]) == (
        1, ["PC 2025-09-02: 1 entries, 1 exits; the gates passed 1 IN, 0 OUT"])
    assert run(hours[:2]) == (1, ["PC 2025-09-02: 0 entries, 0 exits; the gates passed 1 IN, 0 OUT"])


def test_title_metrics_within_item_metrics(tmp_path):
    def item(metric: str, count: int) -> dict:
        return {**_usage("TR", "SpringerLink", metric, count), "title": "A book"}

    clean = [item("Unique_Title_Requests", 4), item("Unique_Item_Requests", 4),
             item("Unique_Title_Investigations", 6), item("Unique_Item_Investigations", 9)]
    assert _run(tmp_path, "counter_titles_within_items", "staging.counter_usage", clean, {}) == (0, [])
    broken = clean[:1] + [item("Unique_Item_Requests", 3)] + clean[2:]
    count, sample = _run(tmp_path, "counter_titles_within_items", "staging.counter_usage", broken, {})
    assert count == 1 and sample[0].startswith("2025-09 TR A book: Unique_Title_Requests 4 > Unique_Item_Requests 3")
