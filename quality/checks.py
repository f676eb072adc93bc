"""The interface assets use for their checks: which checks a table has, and running them.

Asset factories declare ``check_specs(contract)`` on every asset and yield the results of
``evaluate(...)`` after writing, so the checks of a table are defined in one place: the
rules its contract states (validated by Great Expectations on pandas, one validation per
table and run) and the hand-written rules of `quality.rules` (SQL on DuckDB).
``SHUKU_QUALITY_CHECKS=off`` leaves them out of the definitions (benchmarks only).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable

import dagster as dg
import polars as pl

from quality.results import CheckOutcome, partition_label, write_results
from quality.rules import (PSEUDONYM, SAFE_PII, locator_columns, register_card_lookup, rule_tables, rules_for,
                           run_rule)
from quality.suites import ERROR, ExpectationResult, contract_expectations, validate_frame
from warehouse.contracts import Contract
from warehouse.library import load_library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings
from warehouse.storage import compute_connection

CHECKED_LAYERS = ("staging", "core", "marts")
SWITCH = "SHUKU_QUALITY_CHECKS"
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class PlannedCheck:
    name: str
    description: str
    severity: str


def checks_enabled() -> bool:
    return os.environ.get(SWITCH, "on").lower() not in ("off", "0", "false", "no")


def planned_checks(contract: Contract) -> list[PlannedCheck]:
    """Every check of a table, contract rules first, then hand-written rules."""
    if contract.layer not in CHECKED_LAYERS:
        return []
    return ([PlannedCheck(e.name, e.description, e.severity) for e in contract_expectations(contract)]
            + [PlannedCheck(r.name, r.description, r.severity) for r in rules_for(contract)])


def check_specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    """The Dagster asset checks of a table; error-severity checks block what is downstream."""
    if not checks_enabled():
        return []
    key = dg.AssetKey([contract.layer, contract.table])
    return [dg.AssetCheckSpec(name=c.name, asset=key, description=c.description, blocking=c.severity == ERROR)
            for c in planned_checks(contract)]


def rows_written(contract: Contract, partition_keys: list[str] | None) -> str:
    """SQL for the rows a run wrote: its partitions of the table, or the whole table."""
    part = contract.partition_column
    if part is None or not partition_keys:
        return contract.qualified_name
    days = sorted({key if contract.partitioning == "day" else f"{key}-01" for key in partition_keys})
    listed = ", ".join(f"DATE '{day}'" for day in days)
    return f'(SELECT * FROM {contract.qualified_name} WHERE "{part.name}" IN ({listed}))'


def _shown(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(empty)"
    return str(value.item() if hasattr(value, "item") else value)


def _sample(contract: Contract, result: ExpectationResult, locator: list[str]) -> list[str]:
    """Where each offending row is, and its value unless the column is personal (patron_pid is a pseudonym)."""
    separator = ":" if locator == ["source_file", "source_line"] else " "
    shown = []
    for row in result.unexpected_rows:
        where = separator.join(_shown(row.get(c)) for c in locator if c in row)
        values = []
        for name in result.rule.columns:
            col = contract.column(name)
            personal = col.pii not in SAFE_PII and name != PSEUDONYM
            values.append(f"{name}=[personal, not shown]" if personal else f"{name}={_shown(row.get(name))}")
        shown.append(" ".join(filter(None, [where, *values])))
    return shown


def run_checks(contract: Contract, settings: Settings, *, run_id: str,
               partition_keys: list[str] | None) -> list[CheckOutcome]:
    """Run every check of the table on the rows this run wrote and record them in meta.quality_results."""
    if contract.layer not in CHECKED_LAYERS:
        return []
    expectations = contract_expectations(contract)
    rules = rules_for(contract)
    outcomes = []
    con = compute_connection(settings, [contract.qualified_name, *rule_tables(rules)])
    try:
        rows = rows_written(contract, partition_keys)
        if expectations:
            locator = locator_columns(contract)
            needed = list(dict.fromkeys([c for e in expectations for c in e.columns] + locator))
            selected = ", ".join(f'"{c}"' for c in needed)
            frame = con.execute(f"SELECT {selected} FROM {rows}").df()
            for result in validate_frame(contract, frame, locator, SAMPLE_SIZE):
                rule = result.rule
                outcomes.append(CheckOutcome(
                    table_name=contract.qualified_name, check_name=rule.name, expectation=rule.expectation,
                    column_name=", ".join(rule.columns), severity=rule.severity, success=result.success,
                    observed_value=f"{result.unexpected_count:,} of {result.element_count:,} rows",
                    unexpected_count=result.unexpected_count, sample=_sample(contract, result, locator)))
        context = register_card_lookup(con, settings, contract, rows) if rules else {}
        for rule in rules:
            count, sample = run_rule(con, rule, contract, rows, context, SAMPLE_SIZE)
            outcomes.append(CheckOutcome(
                table_name=contract.qualified_name, check_name=rule.name, expectation="sql", column_name=None,
                severity=rule.severity, success=count == 0, observed_value=f"{count:,} offending",
                unexpected_count=count, sample=sample))
    finally:
        con.close()
    _scrub_samples(settings, outcomes)
    write_results(settings, run_id, partition_keys, outcomes)
    return outcomes


def _scrub_samples(settings: Settings, outcomes: list[CheckOutcome]) -> None:
    """Last safety net: a value shown in a sample never carries a card number, e-mail or phone number.

    Columns without personal data can still hold one by mistake (what the privacy checks look for).
    """
    if not any(o.sample for o in outcomes):
        return
    pattern = load_library(settings.library_config).card_number_pattern
    pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
    for outcome in outcomes:
        if outcome.sample:
            outcome.sample = pseudonymiser.scrub(pl.Series(outcome.sample, dtype=pl.Utf8), pattern).to_list()


def evaluate(contract: Contract, settings: Settings, *, run_id: str,
             partition_keys: list[str] | None) -> Iterable[dg.AssetCheckResult]:
    """Run the table's checks on what this run wrote (its partitions, or the whole table)."""
    if not checks_enabled():
        return []
    key = dg.AssetKey([contract.layer, contract.table])
    label = partition_label(partition_keys)
    return [dg.AssetCheckResult(
        asset_key=key, check_name=o.check_name, passed=o.success,
        severity=dg.AssetCheckSeverity.ERROR if o.severity == ERROR else dg.AssetCheckSeverity.WARN,
        metadata={"observed": o.observed_value, "unexpected_count": o.unexpected_count, "partitions": label,
                  "sample": dg.MetadataValue.json(o.sample)})
        for o in run_checks(contract, settings, run_id=run_id, partition_keys=partition_keys)]
