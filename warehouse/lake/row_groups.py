"""A partition staged a row group at a time, for data too large to hold whole.

It is written under a hidden name beside the partition it replaces, like ``stage_partition``'s,
and is a ``PendingPartition`` once finished: audited, then published or discarded. Nothing is
visible until it is published, so a failure halfway leaves the stored partition as it was.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from schemas.model import Contract
from warehouse.lake.files import flush, storage_error, temp_path
from warehouse.lake.partitions import PendingPartition
from warehouse.lake.paths import partition_file, table_file
from warehouse.settings import Settings


class StagedWriter:
    """One partition (or a whole table when ``key`` is None) written beside the stored one in row groups."""

    def __init__(self, settings: Settings, contract: Contract, key: str | None):
        part = contract.partition_column
        if part is not None and key is None:
            raise ValueError(f"{contract.qualified_name} is partitioned by {part.name}: name the partition to write")
        self.path = table_file(settings, contract) if part is None else partition_file(settings, contract, key)
        self.table, self.key, self.drop = contract.qualified_name, key, part.name if part is not None else None
        self.tmp: Path | None = None
        self.writer: pq.ParquetWriter | None = None

    def write(self, frame: pl.DataFrame) -> None:
        """Add ``frame`` (the contract's columns, conformed) as one row group."""
        try:
            arrow = (frame.drop(self.drop) if self.drop else frame).to_arrow()
            if self.writer is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.tmp = temp_path(self.path)
                # The lake's Parquet settings, as warehouse.lake.files.write_parquet writes them.
                self.schema = arrow.schema
                self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd", write_statistics=True)
            self.writer.write_table(arrow.cast(self.schema))
        except OSError as exc:
            self.discard()
            raise (storage_error(exc, self.path) or exc) from exc
        except BaseException:
            self.discard()
            raise

    def finish(self) -> PendingPartition:
        """The file closed and flushed, as a staged partition (at least one row group must be written)."""
        try:
            self.writer.close()
            flush(self.tmp)
        except OSError as exc:
            self.discard()
            raise (storage_error(exc, self.path) or exc) from exc
        return PendingPartition(self.table, self.key, self.path, self.tmp)

    def discard(self) -> None:
        """Drop what was written; the stored partition stays as it was."""
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away; its own error has been raised
                pass
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
        self.writer = None
