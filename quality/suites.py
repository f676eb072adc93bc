"""Expectation suites generated from a contract: one Great Expectations expectation per rule.

required → not null, unique / primary key → unique (a compound key → compound unique),
``logicalTypeOptions.pattern`` → regex, ``minimum``/``maximum`` → between, allowed values
→ in set. The list of rules (`contract_expectations`) is plain data, so Dagster can
declare its checks without importing GX (a 3 s import); GX is imported only to validate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

from warehouse.contracts import Column, Contract

ERROR, WARN = "error", "warn"
WARN_WORDS = {"warn", "warning", "info"}

# The ODCS quality metric that may carry a severity for each generated rule.
METRIC_OF_KIND = {"not_null": "nullValues", "unique": "duplicateValues", "in_set": "invalidValues"}


@dataclass(frozen=True)
class ContractExpectation:
    """One generated rule: its check name, the GX expectation class and its arguments."""

    name: str
    kind: str
    expectation: str
    columns: tuple[str, ...]
    kwargs: dict = field(hash=False, compare=False)
    severity: str
    description: str

    @property
    def column(self) -> str | None:
        return self.columns[0] if len(self.columns) == 1 else None


def _severity(contract: Contract, column: str, metric: str) -> str:
    """The ODCS `quality[].severity` of the column's rule with this metric; error when none says warn."""
    obj = contract.model.schema_[0]
    for prop in obj.properties or ():
        if prop.name != column:
            continue
        for rule in prop.quality or ():
            if rule.metric == metric and rule.severity and rule.severity.lower() in WARN_WORDS:
                return WARN
    return ERROR


def _between_text(options: dict) -> str:
    low, high = options.get("minimum"), options.get("maximum")
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _for_column(contract: Contract, col: Column, single_key: bool) -> list[ContractExpectation]:
    found = []

    def add(kind: str, expectation: str, kwargs: dict, description: str) -> None:
        found.append(ContractExpectation(
            name=f"{kind}__{col.name}", kind=kind, expectation=expectation, columns=(col.name,),
            kwargs={"column": col.name, **kwargs},
            severity=_severity(contract, col.name, METRIC_OF_KIND.get(kind, "")), description=description))

    if col.required:
        add("not_null", "ExpectColumnValuesToNotBeNull", {}, f"Every row has a {col.name}.")
    if col.unique or (col.primary_key and single_key):
        add("unique", "ExpectColumnValuesToBeUnique", {}, f"No two rows share a {col.name}.")
    if col.options.get("pattern"):
        add("matches", "ExpectColumnValuesToMatchRegex", {"regex": col.options["pattern"]},
            f"Every {col.name} matches the pattern {col.options['pattern']}.")
    if col.options.get("minimum") is not None or col.options.get("maximum") is not None:
        add("between", "ExpectColumnValuesToBeBetween",
            {"min_value": col.options.get("minimum"), "max_value": col.options.get("maximum")},
            f"Every {col.name} is {_between_text(col.options)}.")
    if col.allowed_values:
        add("in_set", "ExpectColumnValuesToBeInSet", {"value_set": list(col.allowed_values)},
            f"Every {col.name} is one of {', '.join(col.allowed_values)}.")
    return found


def contract_expectations(contract: Contract) -> list[ContractExpectation]:
    """The rules a contract states, in column order (the partition column is set by the folder, not checked)."""
    key = contract.primary_key
    found = []
    for col in contract.columns:
        if col.physical_type.endswith("[]") or col.partitioned:
            continue
        found += _for_column(contract, col, single_key=len(key) == 1)
    if len(key) > 1:
        found.append(ContractExpectation(
            name="unique__" + "__".join(key), kind="unique", expectation="ExpectCompoundColumnsToBeUnique",
            columns=tuple(key), kwargs={"column_list": list(key)}, severity=ERROR,
            description=f"No two rows share the same {', '.join(key)}."))
    return found


def _gx():
    """Great Expectations, imported on first use with its analytics off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    return gx, gxe


@lru_cache(maxsize=1)
def _context():
    """One ephemeral context per process (it writes no files) with progress bars off."""
    gx, _ = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@lru_cache(maxsize=None)
def _batch_definition(table: str):
    """A pandas data source per table in the ephemeral context; each run passes its own frame."""
    source = _context().data_sources.add_pandas(table)
    return source.add_dataframe_asset("what_this_run_wrote").add_batch_definition_whole_dataframe("whole")


def build_suite(contract: Contract):
    """A GX ``ExpectationSuite`` holding one expectation per contract rule (the check name in ``meta``)."""
    gx, gxe = _gx()
    _context()  # GX attaches a suite to the current context
    suite = gx.ExpectationSuite(name=contract.qualified_name)
    for rule in contract_expectations(contract):
        expectation = getattr(gxe, rule.expectation)(**rule.kwargs, meta={"check": rule.name})
        suite.add_expectation(expectation)
    return suite


@dataclass
class ExpectationResult:
    """What GX found for one rule: success, counts and the first offending rows (value + locator)."""

    rule: ContractExpectation
    success: bool
    element_count: int
    unexpected_count: int
    unexpected_rows: list[dict]


def validate_frame(contract: Contract, frame, locator: list[str], sample_size: int = 5) -> list[ExpectationResult]:
    """Validate a pandas ``frame`` against the contract's suite in ONE GX validation.

    ``locator`` names columns returned beside each offending value (e.g. source_file, source_line).
    """
    rules = {r.name: r for r in contract_expectations(contract)}
    if not rules:
        return []
    batch = _batch_definition(contract.qualified_name).get_batch(batch_parameters={"dataframe": frame})
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": sample_size}
    if locator:
        result_format["unexpected_index_column_names"] = locator
    validation = batch.validate(build_suite(contract), result_format=result_format)
    found = []
    for outcome in validation.results:
        rule = rules[outcome.expectation_config.meta["check"]]
        result = outcome.result or {}
        rows = result.get("partial_unexpected_index_list") or [
            {rule.columns[0]: v} for v in result.get("partial_unexpected_list") or []]
        found.append(ExpectationResult(
            rule=rule, success=bool(outcome.success), element_count=int(result.get("element_count") or len(frame)),
            unexpected_count=int(result.get("unexpected_count") or 0), unexpected_rows=list(rows)[:sample_size]))
    order = list(rules)
    return sorted(found, key=lambda r: order.index(r.rule.name))
