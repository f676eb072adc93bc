"""The contract linter: naming, types by suffix, descriptions, classification, masking, coverage.

Rules (each finding names the file, the YAML path, the rule and what to do):
  snake-case         table and column names are lower snake_case
  suffix-type        `_at` is TIMESTAMP, `_date` DATE, `_id`/`_pid` VARCHAR, `_count` an integer type
  type-suffix        a TIMESTAMP column ends in `_at`; a DATE column ends in `_date` or `_month`
                     (a day or a month), or is `date_key` (the date dimension's key)
  described          the table and every column have a description
  classified         every column declares `pii` (direct, quasi or none) in its customProperties
  masking-known      `masking` is one of hmac, drop, generalise
  direct-protected   a pii=direct column is masked or restricted
  quasi-confidential a pii=quasi column is at least confidential, unless a `piiJustification`
                     customProperty says why a lower level is safe
  table-contract     every table the pipeline writes has a contract
  contract-table     every contract describes a table the pipeline writes
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from schemas import CONTRACTS_DIR
from schemas.model import Contract
from schemas.roles import level

SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
INTEGER_TYPES = {"BIGINT", "INTEGER"}
PII_VALUES = ("direct", "quasi", "none")
MASKINGS = ("hmac", "drop", "generalise")
JUSTIFICATION = "piiJustification"
SUFFIX_TYPES = (("_at", {"TIMESTAMP"}), ("_date", {"DATE"}), ("_pid", {"VARCHAR"}), ("_id", {"VARCHAR"}),
                ("_count", INTEGER_TYPES))


@dataclass(frozen=True)
class Finding:
    file: str
    path: str        # YAML path inside the file, e.g. schema[0].properties[3].physicalType
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: at `{self.path}`: [{self.rule}] {self.message}"


def _custom(props) -> dict:
    return {p.property: p.value for p in props or () if p.property}


def _date_name_ok(name: str) -> bool:
    return name.endswith(("_date", "_month")) or name == "date_key"


def _lint_contract(contract: Contract) -> list[Finding]:
    file = str(contract.path)
    found = []

    def add(path: str, rule: str, message: str) -> None:
        found.append(Finding(file, path, rule, message))

    obj = contract.model.schema_[0]
    if not SNAKE.fullmatch(contract.table):
        add("schema[0].name", "snake-case", f"table name {contract.table!r} is not lower snake_case; rename it.")
    if not (obj.description or "").strip():
        add("schema[0].description", "described", f"table {contract.qualified_name} has no description; add one.")
    for i, (prop, column) in enumerate(zip(obj.properties or (), contract.columns)):
        where = f"schema[0].properties[{i}]"
        name, ptype = column.name, column.physical_type
        if not SNAKE.fullmatch(name):
            add(f"{where}.name", "snake-case", f"column {name!r} is not lower snake_case; rename it.")
        for suffix, types in SUFFIX_TYPES:
            if name.endswith(suffix):
                if ptype not in types:
                    add(f"{where}.physicalType", "suffix-type",
                        f"column {name} ends in {suffix} so should be {' or '.join(sorted(types))}, not {ptype}; "
                        "change the type or the name.")
                break
        if ptype == "TIMESTAMP" and not name.endswith("_at"):
            add(f"{where}.name", "type-suffix", f"TIMESTAMP column {name} should end in _at; rename it.")
        if ptype == "DATE" and not _date_name_ok(name):
            add(f"{where}.name", "type-suffix",
                f"DATE column {name} should end in _date (a day) or _month (a month), or be date_key; rename it.")
        if not column.description.strip():
            add(f"{where}.description", "described", f"column {name} has no description; add one.")
        custom = _custom(prop.customProperties)
        pii = custom.get("pii")
        if pii not in PII_VALUES:
            add(f"{where}.customProperties", "classified",
                f"column {name} declares pii {pii!r}; add a customProperty pii: direct, quasi or none.")
        masking = custom.get("masking")
        if masking is not None and masking not in MASKINGS:
            add(f"{where}.customProperties", "masking-known",
                f"column {name} has masking {masking!r}; use one of {', '.join(MASKINGS)}.")
        if pii == "direct" and masking is None and column.classification != "restricted":
            add(f"{where}.classification", "direct-protected",
                f"column {name} is a direct identifier but neither masked nor restricted; "
                "pseudonymise it (masking: hmac), drop it, or classify it restricted.")
        if pii == "quasi" and level(column.classification) < level("confidential") and not custom.get(JUSTIFICATION):
            add(f"{where}.classification", "quasi-confidential",
                f"column {name} is a quasi-identifier classified {column.classification}; classify it confidential, "
                f"or add a customProperty {JUSTIFICATION} saying why the lower level is safe.")
    return found


def lint(contracts: dict[str, Contract] | Iterable[Contract], tables: Iterable[str] | None = None) -> list[Finding]:
    """Every finding in ``contracts``; with ``tables`` (what the pipeline writes), coverage both ways too."""
    contracts = list(contracts.values()) if isinstance(contracts, dict) else list(contracts)
    findings = [f for c in contracts for f in _lint_contract(c)]
    if tables is not None:
        tables = set(tables)
        declared = {c.qualified_name: c for c in contracts}
        for name in sorted(tables - set(declared)):
            expected = Path(CONTRACTS_DIR) / f"{name.replace('.', '/')}.odcs.yaml"
            findings.append(Finding(str(expected), "(file)", "table-contract",
                                    f"the pipeline writes {name} but no contract declares it; add {expected.name}."))
        for name in sorted(set(declared) - tables):
            findings.append(Finding(str(declared[name].path), "schema[0].physicalName", "contract-table",
                                    f"no part of the pipeline writes {name}; remove the contract or build the table."))
    return findings
