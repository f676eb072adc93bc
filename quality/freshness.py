"""Freshness from a contract's ``slaProperties``: the newest data no older than ``freshness`` days.

Measured on the whole table (not only what a run wrote) against the library's today, in the
library's time zone. A warning, never blocking: loading history (a backfill, the demo's
generated year) always gives old data, and that is not bad data.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import duckdb

from quality.rules import library
from quality.suites import WARN
from schemas.model import Contract
from warehouse.settings import Settings

FRESHNESS = "freshness"
MONTH = "month"


@dataclass(frozen=True)
class FreshnessRule:
    name: str
    column: str
    days: float
    description: str
    severity: str = WARN


def freshness_column(contract: Contract) -> str | None:
    """The column saying how new a row is: the partition column, else the first required date or timestamp.

    An ODCS ``element`` on the freshness SLA names it explicitly.
    """
    for sla in contract.model.slaProperties or ():
        if sla.property == FRESHNESS and sla.element:
            return sla.element.split(".")[-1]
    part = contract.partition_column
    if part is not None:
        return part.name
    return next((c.name for c in contract.columns if c.required and c.physical_type in ("DATE", "TIMESTAMP")), None)


def freshness_rule(contract: Contract) -> FreshnessRule | None:
    """The table's freshness check, or None without an SLA or a column to measure it on (snapshots)."""
    column = freshness_column(contract)
    if contract.freshness_days is None or column is None:
        return None
    days = contract.freshness_days
    period = " (a month counts from its last day)" if contract.partitioning == MONTH else ""
    return FreshnessRule(FRESHNESS, column, days, (
        f"The newest {column} is at most {days:g} day(s) before the library's today{period}. A warning: "
        "loaded history (a backfill, the demo's generated days) is always older and warns, as it should."))


def library_today(settings: Settings, now: dt.datetime | None = None) -> dt.date:
    """Today in the library's time zone; ``now`` (naive means library local time) replaces the clock."""
    tz = library(settings).tz
    if now is None:
        return dt.datetime.now(tz).date()
    return (now if now.tzinfo is None else now.astimezone(tz)).date()


def period_end(contract: Contract, newest: dt.date) -> dt.date:
    """The last day the newest value covers: a month partition covers its whole month."""
    if contract.partitioning == MONTH:
        return newest.replace(day=calendar.monthrange(newest.year, newest.month)[1])
    return newest


def is_stale(contract: Contract, newest: dt.date | dt.datetime, today: dt.date) -> bool:
    """Whether the newest value is older than the contract's freshness SLA allows."""
    day = newest.date() if isinstance(newest, dt.datetime) else newest
    return (today - period_end(contract, day)).days > contract.freshness_days


def check_freshness(con: duckdb.DuckDBPyConnection, contract: Contract, rule: FreshnessRule,
                    today: dt.date) -> tuple[bool, str, list[str]]:
    """(fresh, observed text, sample) for the whole table, its newest value computed by DuckDB."""
    newest = con.execute(f'SELECT max("{rule.column}") FROM {contract.qualified_name}').fetchone()[0]
    if newest is None:
        return False, f"no rows, so no newest {rule.column}", []
    day = newest.date() if isinstance(newest, dt.datetime) else newest
    age = (today - period_end(contract, day)).days
    observed = f"newest {rule.column} {newest}, {age} day(s) before {today} (SLA {rule.days:g})"
    return not is_stale(contract, newest, today), observed, [f"newest {rule.column}={newest}"]
