"""Which checks a table has: the rules its contract states, its freshness SLA and the hand-written
rules of `quality.rules`, in that order. ``SHUKU_QUALITY_CHECKS=off`` turns them all off
(benchmarks only)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from quality.freshness import freshness_rule
from quality.rules import rules_for
from quality.suites import contract_expectations
from schemas.model import Contract
from schemas.vocabulary import DATA_LAYERS

SWITCH = "SHUKU_QUALITY_CHECKS"


@dataclass(frozen=True)
class PlannedCheck:
    name: str
    description: str
    severity: str


def checks_enabled() -> bool:
    return os.environ.get(SWITCH, "on").lower() not in ("off", "0", "false", "no")


def planned_checks(contract: Contract) -> list[PlannedCheck]:
    """Every check of a table, contract rules first, then hand-written rules."""
    if contract.layer not in DATA_LAYERS:
        return []
    fresh = freshness_rule(contract)
    return ([PlannedCheck(e.name, e.description, e.severity) for e in contract_expectations(contract)]
            + ([PlannedCheck(fresh.name, fresh.description, fresh.severity)] if fresh else [])
            + [PlannedCheck(r.name, r.description, r.severity) for r in rules_for(contract)])
