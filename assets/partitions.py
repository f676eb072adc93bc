"""Partitions in the library's own time zone: days for logs, months for COUNTER."""

from __future__ import annotations

import dagster as dg

from schemas.vocabulary import DAY, MONTH
from warehouse.library import Library


def daily_partitions(library: Library) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=library.partitions_start.isoformat(),
                                        timezone=library.timezone)


def monthly_partitions(library: Library) -> dg.MonthlyPartitionsDefinition:
    return dg.MonthlyPartitionsDefinition(start_date=library.partitions_start.strftime("%Y-%m"),
                                          timezone=library.timezone, fmt="%Y-%m")


def partitions_for(partitioning: str | None, library: Library) -> dg.PartitionsDefinition | None:
    if partitioning == DAY:
        return daily_partitions(library)
    if partitioning == MONTH:
        return monthly_partitions(library)
    return None
