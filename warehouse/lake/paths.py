"""Every path of the lake, the quarantine and their records, made in one place.

What Shuku stores names files relative to the home (``lake/core/fact_loan/…``,
``landing/circulation/…``) and resolves them against the current home when it reads them,
so that a home can be copied, moved or restored. The views of ``warehouse.duckdb`` read
relative globs (see `warehouse.lake.views`).

Temporary names start with ``TMP_PREFIX`` and do not end in ``.parquet``, so the views' globs
never read a file being written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Iterator

from schemas.model import Contract
from schemas.vocabulary import DAY, QUARANTINE
from warehouse.settings import Settings

PART_FILE = "part-0.parquet"
# A record kept beside a landing file, named after it (the harvest's request, without secrets): it goes
# where the file goes (deleted with it by a retention sweep). Not a file of any source.
REQUEST_RECORD_SUFFIX = ".request.json"
TMP_PREFIX = ".tmp-"
# The SHA-256 and size of each partition file, one small record file per data file, at the data
# file's own path below this table's folder (lake/meta/file_checksums/lake/staging/…/part-0.parquet).
CHECKSUMS_TABLE = "meta.file_checksums"
# What each SQL model was last built from (lake/meta/model_inputs/<layer.table>.json).
MODEL_INPUTS = "meta.model_inputs"


def request_record(path: Path) -> Path:
    """The record of the request that brought a landing file."""
    return path.with_name(path.name + REQUEST_RECORD_SUFFIX)


def relative(settings: Settings, path: Path | str) -> str:
    """``path`` (under the home) relative to the home, with forward slashes."""
    return Path(path).relative_to(settings.home).as_posix()


def table_dir(settings: Settings, table: Contract | str) -> Path:
    """The folder of a table (a contract, or its ``layer.table`` name)."""
    layer, name = (table if isinstance(table, str) else table.qualified_name).split(".", 1)
    return (settings.quarantine if layer == QUARANTINE else settings.lake / layer) / name


def partition_path(base: Path, parts: dict[str, str]) -> Path:
    """The partition file under ``base`` for its folders' ``column=value`` pairs, in order."""
    for key, value in parts.items():
        base = base / f"{key}={value}"
    return base / PART_FILE


def table_file(settings: Settings, contract: Contract) -> Path:
    """The one file of a table that is not partitioned."""
    return table_dir(settings, contract) / PART_FILE


def partition_file(settings: Settings, contract: Contract, key: str) -> Path:
    """The file of one partition (its folder value, e.g. a day) of a partitioned table."""
    return partition_path(table_dir(settings, contract), {contract.partition_column.name: key})


def partition_files(settings: Settings, contract: Contract) -> dict[str, Path]:
    """{partition folder value: its file} of a partitioned table's partitions that have one."""
    base, part = table_dir(settings, contract), contract.partition_column
    found = sorted(base.glob(f"{part.name}=*/{PART_FILE}")) if base.exists() else []
    return {path.parent.name.split("=", 1)[1]: path for path in found}


def data_files(settings: Settings, table: Contract | str) -> Iterator[Path]:
    """Every Parquet file of a table (a contract, or its ``layer.table`` name; temporary files left
    out), as found."""
    base = table_dir(settings, table)
    if base.exists():
        yield from (p for p in base.rglob("*.parquet") if not p.name.startswith(TMP_PREFIX))


def partition_date(key: str, partitioning: str) -> dt.date:
    """The date a partition key stands for, as its folder is named: a day, or a month's first day."""
    return dt.date.fromisoformat(key if partitioning == DAY else f"{key}-01")


def partition_end(value: str, partitioning: str) -> dt.date:
    """The last day a partition covers, from its key or folder value (``2025-09`` or ``2025-09-01``
    of a month): the day itself, or the last day of its month."""
    first = dt.date.fromisoformat(value if len(value) > 7 else f"{value}-01")
    if partitioning == DAY:
        return first
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def quarantine_file(settings: Settings, source: str, table: str, key: str) -> Path:
    """A source's quarantined lines of one staging table and partition (``all`` for a snapshot)."""
    return partition_path(table_dir(settings, f"{QUARANTINE}.{source}"), {"staging_table": table, "partition_key": key})


def restricted_quarantine_file(settings: Settings, source: str, key: str) -> Path:
    """Raw lines full of personal data that could not be parsed, kept only in the restricted area."""
    return partition_path(settings.restricted / QUARANTINE / source, {"partition_key": key})


def keyed_file(settings: Settings, table: str, key: str) -> Path:
    """The file of a meta table written per partition key, in a plain ``<key>`` folder."""
    return table_dir(settings, table) / key / PART_FILE


def run_file(folder: Path, run_id: str) -> Path:
    """One run's rows of a per-run meta table (the ingest log, check results) in one of its folders."""
    return folder / f"run-{run_id}.parquet"


def run_files(folder: Path) -> list[Path]:
    """The runs' files in a folder of a per-run meta table."""
    return list(folder.glob(run_file(Path(), "*").name))


def log_file(settings: Settings, table: str, when: dt.datetime) -> Path:
    """A new file of an append-only log table, in the folder of its day."""
    return table_dir(settings, table) / when.date().isoformat() / f"{uuid.uuid4().hex}.parquet"


def model_record(settings: Settings, model: str) -> Path:
    """What a SQL model (``layer.table``) was last built from."""
    return table_dir(settings, MODEL_INPUTS) / f"{model}.json"


def damaged_dir(settings: Settings) -> Path:
    """Where damaged files are moved aside (``damaged/<time>/<their path>``), kept out of the views' way."""
    return settings.home / "damaged"


def lock_path(settings: Settings, name: str) -> Path:
    """The lock file of a table (``layer.table``) or of another named thing written under a lock."""
    return settings.home / "locks" / f"{name}.lock"


def checksums_root(settings: Settings) -> Path:
    return table_dir(settings, CHECKSUMS_TABLE)


def checksum_record_path(settings: Settings, path: Path) -> Path:
    return checksums_root(settings) / Path(path).relative_to(settings.home)


def table_of_file(settings: Settings, path: Path) -> str | None:
    """``layer.table`` of a file of the lake or the quarantine, else None."""
    path = Path(path)
    for root, layer in ((settings.lake, None), (settings.quarantine, QUARANTINE)):
        if root in path.parents:
            parts = path.relative_to(root).parts
            if layer is None:
                return f"{parts[0]}.{parts[1]}" if len(parts) >= 3 else None
            return f"{layer}.{parts[0]}" if len(parts) >= 2 else None
    return None


def describe_file(settings: Settings, path: Path) -> tuple[str, str] | None:
    """(``layer.table``, partition folder) of a partition file of the lake or the quarantine, else None.

    Only ``part-0.parquet`` files are partitions; per-run files (ingest log, check results) are history.
    """
    path = Path(path)
    table = table_of_file(settings, path)
    if path.name != PART_FILE or table is None or table == CHECKSUMS_TABLE:
        return None
    folder = table_dir(settings, table)
    return table, "/".join(path.relative_to(folder).parts[:-1])
