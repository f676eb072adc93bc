"""Reconciliation rules: identities between two sources that must agree, as SQL for `quality.rules`.

Each builder returns the SQL of a rule's offending rows (one text column ``found_at`` naming the
day, platform or zone, never a personal value). Where the two sources may honestly differ a
little, the tolerance is a customProperty of the table's contract, which says why.
"""

from __future__ import annotations

from typing import Callable

from schemas.model import Contract, contract_for

COUNTER_TOTALS = ("Total_Item_Requests", "Total_Item_Investigations")
PR_DR_TOLERANCE = "prDrTolerance"                 # customProperty of staging.counter_usage
OPENING_TOLERANCE = "openingOccupancyTolerance"   # customProperties of core.fact_gate_event
MISSED_ENTRY_SHARE = "missedEntryShare"


def _tolerance(table: str, name: str) -> float:
    value = contract_for(table).custom.get(name)
    if value is None:
        raise ValueError(f"schemas/{table.replace('.', '/')}.odcs.yaml: add the customProperty {name} "
                         "(the tolerance its reconciliation rule allows).")
    return float(value)


def pr_dr_tolerance() -> float:
    return _tolerance("staging.counter_usage", PR_DR_TOLERANCE)


def gate_tolerance() -> tuple[int, float]:
    """(people, share of the day's entries) the running count IN minus OUT may fall below zero."""
    return (int(_tolerance("core.fact_gate_event", OPENING_TOLERANCE)),
            _tolerance("core.fact_gate_event", MISSED_ENTRY_SHARE))


def loans_match_issues(contract: Contract, rows: str, context: dict) -> str:
    """Days where core.fact_loan's loans differ from staging.circulation_event's issue events."""
    return (f"WITH loans AS (SELECT issue_date AS day, count(*) AS loans FROM {rows} GROUP BY ALL), "
            "issues AS (SELECT event_date AS day, count(*) AS issues FROM staging.circulation_event "
            " WHERE event_type = 'issue' GROUP BY ALL) "
            "SELECT CAST(day AS VARCHAR) || ': ' || CAST(coalesce(loans, 0) AS VARCHAR) || ' loans, ' "
            "|| CAST(coalesce(issues, 0) AS VARCHAR) || ' issue events' AS found_at "
            "FROM loans FULL JOIN issues USING (day) WHERE coalesce(loans, 0) <> coalesce(issues, 0)")


def pr_matches_dr(contract: Contract, rows: str, context: dict) -> str:
    """Platforms and months with both a PR and a DR where the PR's item totals are not the sum of the DR's
    rows, beyond the tolerance (a share of the PR total, rounded up to whole counts)."""
    tolerance = pr_dr_tolerance()
    metrics = ", ".join(f"'{m}'" for m in COUNTER_TOTALS)
    return (f"WITH sent AS (SELECT usage_month, release, platform FROM {rows} "
            " WHERE report_id IN ('PR', 'DR') AND platform IS NOT NULL GROUP BY ALL "
            " HAVING bool_or(report_id = 'PR') AND bool_or(report_id = 'DR')), "
            "metrics AS (SELECT unnest([" + metrics + "]) AS metric_type), "
            f"sums AS (SELECT usage_month, release, platform, metric_type, "
            " coalesce(sum(usage_count) FILTER (WHERE report_id = 'PR'), 0) AS pr, "
            " coalesce(sum(usage_count) FILTER (WHERE report_id = 'DR'), 0) AS dr "
            f" FROM sent CROSS JOIN metrics LEFT JOIN {rows} AS u USING (usage_month, release, platform, metric_type) "
            " GROUP BY ALL) "
            "SELECT strftime(usage_month, '%Y-%m') || ' ' || platform || ' ' || metric_type || ': PR ' "
            "|| CAST(pr AS VARCHAR) || ', DR rows add up to ' || CAST(dr AS VARCHAR) AS found_at FROM sums "
            f"WHERE abs(pr - dr) > ceil({tolerance!r} * pr)")


def gate_balance_within_zone(limit_per_seat: int) -> Callable[[Contract, str, dict], str]:
    """Zones and days where the running count of passages IN minus OUT goes above what the zone holds
    (``limit_per_seat`` × its seats) or below minus the tolerance (people inside at opening, plus a share
    of the day's entries a gate may miss, rounded up)."""

    def offending(contract: Contract, rows: str, context: dict) -> str:
        people, share = gate_tolerance()
        return (f"WITH moves AS (SELECT zone_code, event_date, event_at, "
                " CASE WHEN direction = 'IN' THEN 1 ELSE -1 END AS step "
                f" FROM {rows} WHERE result = 'PASS' AND zone_code IS NOT NULL AND direction IN ('IN', 'OUT')), "
                "running AS (SELECT *, sum(step) OVER (PARTITION BY zone_code, event_date "
                " ORDER BY event_at, step DESC ROWS UNBOUNDED PRECEDING) AS inside FROM moves), "
                "days AS (SELECT zone_code, event_date, min(inside) AS lowest, max(inside) AS highest, "
                f" -({int(people)} + CAST(ceil({share!r} * count(*) FILTER (WHERE step = 1)) AS BIGINT)) "
                " AS lowest_allowed "
                " FROM running GROUP BY ALL), "
                f"seats AS (SELECT zone_code, {int(limit_per_seat)} * seat_capacity AS highest_allowed "
                " FROM core.dim_zone) "
                "SELECT zone_code || ' ' || CAST(event_date AS VARCHAR) || ': IN - OUT ' || CASE "
                " WHEN highest > highest_allowed THEN 'reached ' || CAST(highest AS VARCHAR) || ' > '"
                "  || CAST(highest_allowed AS VARCHAR) "
                " ELSE 'fell to ' || CAST(lowest AS VARCHAR) || ' < ' || CAST(lowest_allowed AS VARCHAR) "
                " END AS found_at "
                "FROM days JOIN seats USING (zone_code) "
                "WHERE highest > highest_allowed OR lowest < lowest_allowed")

    return offending


def utilisation_matches_passages(contract: Contract, rows: str, context: dict) -> str:
    """Zones and days where marts.space_utilisation's entries or exits differ from the passages IN or OUT
    of core.fact_gate_event."""
    return ("WITH mart AS (SELECT zone_code, event_date, sum(entries) AS entries, sum(exits) AS exits "
            f" FROM {rows} GROUP BY ALL), "
            "gates AS (SELECT zone_code, event_date, count(*) FILTER (WHERE direction = 'IN') AS entries, "
            " count(*) FILTER (WHERE direction = 'OUT') AS exits FROM core.fact_gate_event "
            " WHERE result = 'PASS' AND zone_code IS NOT NULL GROUP BY ALL) "
            "SELECT coalesce(m.zone_code, g.zone_code) || ' ' "
            "|| CAST(coalesce(m.event_date, g.event_date) AS VARCHAR) "
            "|| ': ' || CAST(coalesce(m.entries, 0) AS VARCHAR) || ' entries, ' "
            "|| CAST(coalesce(m.exits, 0) AS VARCHAR) "
            "|| ' exits; the gates passed ' || CAST(coalesce(g.entries, 0) AS VARCHAR) || ' IN, ' "
            "|| CAST(coalesce(g.exits, 0) AS VARCHAR) || ' OUT' AS found_at "
            "FROM mart AS m FULL JOIN gates AS g ON g.zone_code = m.zone_code AND g.event_date = m.event_date "
            "WHERE coalesce(m.entries, 0) <> coalesce(g.entries, 0) OR coalesce(m.exits, 0) <> coalesce(g.exits, 0)")
