"""Our contracts as ODCS files an outside validator (datacontract-cli) tests a lake against.

schemas/ stays the source of truth; an exported file is the same contract with what the
validator needs to find and read the table's data:

- a ``servers`` entry: local Parquet files, the glob of the table's partition files (the
  caller knows where the lake is: ``warehouse.lake_contracts`` gives it);
- ``physicalName`` without the layer prefix: datacontract-cli reads the files into a view of
  that name and finds no model called ``core.fact_loan``;
- physical types in its vocabulary where DuckDB's differs. DuckDB spells a list ``VARCHAR[]``;
  datacontract-cli 1.2.8 reads lists only as ``array``/``list`` (item type from ``items``) and
  turns any other type it does not know into the SQL text ``None``, which stops the whole table
  on a parser error. Our ``TIMESTAMP`` has no time zone (library local time); plain
  ``timestamp`` means ``TIMESTAMP WITH TIME ZONE`` to it, ``timestamp_ntz`` is ours.
"""

from __future__ import annotations

import yaml

from schemas.model import Contract
from schemas.vocabulary import DATA_LAYERS

EXPORTED_LAYERS = DATA_LAYERS
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)     # libyaml when the wheel has it
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SERVER = "lake"
# DuckDB physical type → datacontract-cli's name for it (only where the two differ).
VALIDATOR_TYPES = {"TIMESTAMP": "timestamp_ntz"}
LIST_SUFFIX = "[]"


def exported(contracts: dict[str, Contract]) -> list[Contract]:
    """The contracts an export writes (staging, core and marts), by name."""
    return [c for _, c in sorted(contracts.items()) if c.layer in EXPORTED_LAYERS]


def _validator_type(physical: str) -> str:
    if physical.endswith(LIST_SUFFIX):
        return "array"
    return VALIDATOR_TYPES.get(physical, physical)


def _translate(prop: dict) -> dict:
    """One property (and its ``items``) with physical types datacontract-cli reads."""
    if "physicalType" in prop:
        prop["physicalType"] = _validator_type(prop["physicalType"])
    if isinstance(prop.get("items"), dict):
        _translate(prop["items"])
    return prop


def export_document(contract: Contract, files: str, description: str) -> dict:
    """The contract file's content with a local Parquet server reading ``files`` (a glob), and
    validator-readable names; ``description`` says whose files they are."""
    document = yaml.load(contract.path.read_text(encoding="utf-8"), Loader=_LOADER)
    table = document["schema"][0]
    table["physicalName"] = contract.table
    for prop in table.get("properties") or ():
        _translate(prop)
    document["servers"] = [{"server": SERVER, "type": "local", "format": "parquet",
                            "path": files, "description": description}]
    return document


def document_text(document: dict) -> str:
    """An exported document as YAML, keys in the contract's order."""
    return yaml.dump(document, Dumper=_DUMPER, allow_unicode=True, sort_keys=False)
