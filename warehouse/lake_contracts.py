"""The contracts exported for datacontract-cli (schemas.export), each pointed at this home's Parquet files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas.export import document_text, export_document, exported
from schemas.model import Contract, load_contracts
from warehouse.lake.files import write_text_atomic
from warehouse.lake.paths import table_dir
from warehouse.lake.views import has_data
from warehouse.settings import Settings


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


def export_contracts(settings: Settings, out_dir: Path, contracts: dict[str, Contract] | None = None) -> list[Exported]:
    """Write ``<out>/<layer>/<table>.odcs.yaml`` for every staging, core and mart contract."""
    written = []
    for contract in exported(load_contracts() if contracts is None else contracts):
        files = parquet_glob(settings, contract)
        document = export_document(contract, files, f"Parquet files of {contract.qualified_name} in {settings.home}.")
        path = Path(out_dir) / contract.layer / f"{contract.table}.odcs.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, document_text(document))
        written.append(Exported(contract.qualified_name, path, files, has_data(settings, contract)))
    return written
