"""Freshness between runs: a table goes stale when no run comes, and no run then checks it.

The `freshness_checks` sensor re-evaluates each table's freshness check (the same rule as at
materialisation, `quality.freshness`) against the library's today and reports the result as
an evaluation of that asset check whenever it changes, so the UI shows a table that went stale
overnight, and shows it fresh again after the next load.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from assets.resources import ShukuWarehouse
from quality.freshness import check_freshness, freshness_rule, library_today
from quality.plan import checks_enabled
from schemas.model import load_contracts
from schemas.vocabulary import DATA_LAYERS
from warehouse.lake.views import compute_connection, has_data
from warehouse.settings import Settings

SENSOR = "freshness_checks"


def freshness_evaluations(settings: Settings, today: dt.date, known: dict[str, bool]) -> tuple[list, dict[str, bool]]:
    """(evaluations to report, the state after them): one per table whose freshness differs from ``known``
    (table → fresh at the last report). Tables without data or without a freshness SLA are left out."""
    contracts = [c for c in load_contracts().values()
                 if c.layer in DATA_LAYERS and freshness_rule(c) and has_data(settings, c)]
    if not contracts or not checks_enabled():
        return [], dict(known)
    state, evaluations = dict(known), []
    con = compute_connection(settings, [c.qualified_name for c in contracts])
    try:
        for contract in contracts:
            rule = freshness_rule(contract)
            fresh, observed, _ = check_freshness(con, contract, rule, today)
            if known.get(contract.qualified_name) == fresh:
                continue
            state[contract.qualified_name] = fresh
            evaluations.append(dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey([contract.layer, contract.table]), check_name=rule.name, passed=fresh,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"observed": observed, "evaluated_by": f"the {SENSOR} sensor, on {today}"}))
    finally:
        con.close()
    return evaluations, state


def freshness_sensor() -> dg.SensorDefinition:
    @dg.sensor(name=SENSOR, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Every hour, re-checks each table's freshness against the library's today and "
                           "records a change, so a table that goes stale between runs shows it.")
    def sensor(context: dg.SensorEvaluationContext, shuku: ShukuWarehouse):
        settings = shuku.settings()
        known = json.loads(context.cursor) if context.cursor else {}
        evaluations, state = freshness_evaluations(settings, library_today(settings), known)
        if not evaluations:
            return dg.SkipReason("no table's freshness changed")
        return dg.SensorResult(asset_events=evaluations, cursor=json.dumps(state, sort_keys=True))

    return sensor
