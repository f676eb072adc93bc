"""Our contracts as ODCS files an outside validator (datacontract-cli) tests against a home's lake.

schemas/ stays the source of truth; an exported file is the same contract with what the
validator needs to find and read the table's data:

- a ``servers`` entry: local Parquet files, the glob of the table's partition files;
- ``physicalName`` without the layer prefix: datacontract-cli reads the files into a view of
  that name and finds no model called ``core.fact_loan``;
- physical types in its vocabulary where DuckDB's differs. DuckDB spells a list ``VARCHAR[]``;
  datacontract-cli 1.2.8 reads lists only as ``array``/``list`` (item type from ``items``) and
  turns any other type it does not know into the SQL text ``None``, which stops the whole table
  on a parser error. Our ``TIMESTAMP`` has no time zone (library local time); plain
  ``timestamp`` means ``TIMESTAMP WITH TIME ZONE`` to it, ``timestamp_ntz`` is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from warehouse.contracts import Contract, load_contracts
from warehouse.lake.files import write_text_atomic
from warehouse.lake.paths import table_dir
from warehouse.lake.views import has_data
from warehouse.settings import Settings

EXPORTED_LAYERS = ("staging", "core", "marts")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)     # libyaml when the wheel has it
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SERVER = "lake"
# DuckDB physical type → datacontract-cli's name for it (only where the two differ).
VALIDATOR_TYPES = {"TIMESTAMP": "timestamp_ntz"}
LIST_SUFFIX = "[]"


@dataclass(frozen=True)
class Exported:
    table: str          # layer.table
    path: Path          # the ODCS file written
    files: str          # the glob its server reads
    has_data: bool      # the glob matches at least one Parquet file now


def parquet_glob(settings: Settings, contract: Contract) -> str:
    """The table's Parquet files: one level of ``column=value`` folders when it is partitioned."""
    folders = "*/" if contract.partition_column is not None else ""
    return f"{table_dir(settings, contract)}/{folders}*.parquet"


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


def export_document(contract: Contract, settings: Settings) -> dict:
    """The contract file's content with a local Parquet server and validator-readable names."""
    document = yaml.load(contract.path.read_text(encoding="utf-8"), Loader=_LOADER)
    table = document["schema"][0]
    table["physicalName"] = contract.table
    for prop in table.get("properties") or ():
        _translate(prop)
    document["servers"] = [{"server": SERVER, "type": "local", "format": "parquet",
                            "path": parquet_glob(settings, contract),
                            "description": f"Parquet files of {contract.qualified_name} in {settings.home}."}]
    return document


def export_contracts(settings: Settings, out_dir: Path, contracts: dict[str, Contract] | None = None) -> list[Exported]:
    """Write ``<out>/<layer>/<table>.odcs.yaml`` for every staging, core and mart contract."""
    contracts = load_contracts() if contracts is None else contracts
    written = []
    for name, contract in sorted(contracts.items()):
        if contract.layer not in EXPORTED_LAYERS:
            continue
        document = export_document(contract, settings)
        path = Path(out_dir) / contract.layer / f"{contract.table}.odcs.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, yaml.dump(document, Dumper=_DUMPER, allow_unicode=True, sort_keys=False))
        written.append(Exported(name, path, document["servers"][0]["path"], has_data(settings, contract)))
    return written
