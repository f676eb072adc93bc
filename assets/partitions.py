"""Partitions in the library's own time zone: days for logs, months for COUNTER.

COUNTER months start at January 2019, when COUNTER Release 5 began (or at `partitions_start`
if that is earlier), whatever `partitions_start` says: a library's first load is years of
COUNTER history, and a report of any R5 period must land in its own months without a
configuration change. The months are fixed in advance (not derived from landing) so that the
monthly schedule, backfills and the Dagster UI see the same partitions on every machine.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from schemas.vocabulary import DAY, MONTH
from warehouse.library import Library

COUNTER_RELEASE_5_BEGAN = dt.date(2019, 1, 1)


def daily_partitions(library: Library) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=library.partitions_start.isoformat(),
                                        timezone=library.timezone)


def first_month(library: Library) -> dt.date:
    return min(COUNTER_RELEASE_5_BEGAN, library.partitions_start.replace(day=1))


def monthly_partitions(library: Library) -> dg.MonthlyPartitionsDefinition:
    return dg.MonthlyPartitionsDefinition(start_date=first_month(library).strftime("%Y-%m"),
                                          timezone=library.timezone, fmt="%Y-%m")


def month_range(library: Library) -> tuple[str, str]:
    """The first and the last month partition (the last month that has ended, in the library's time zone)."""
    today = dt.datetime.now(library.tz).date()
    last = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return first_month(library).strftime("%Y-%m"), last.strftime("%Y-%m")


def partitions_for(partitioning: str | None, library: Library) -> dg.PartitionsDefinition | None:
    if partitioning == DAY:
        return daily_partitions(library)
    if partitioning == MONTH:
        return monthly_partitions(library)
    return None
