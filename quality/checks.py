"""The interface assets use for their checks: which checks a table has, and running them.

Asset factories declare ``check_specs(contract)`` on every asset and yield the results of
``evaluate(...)`` after writing, so the checks of a table are defined in one place.
"""

from __future__ import annotations

from typing import Iterable

import dagster as dg

from warehouse.contracts import Contract
from warehouse.settings import Settings


def check_specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    """The Dagster asset checks of a table."""
    return []


def evaluate(contract: Contract, settings: Settings, *, run_id: str,
             partition_keys: list[str] | None) -> Iterable[dg.AssetCheckResult]:
    """Run the table's checks on what this run wrote (its partitions, or the whole table)."""
    return []
