"""Where one staging table's rows of a partition go while its files are parsed, in bounded memory.

Rows gather until they hold ``FLUSH_BYTES`` (warehouse/limits.py); then they are pseudonymised,
freed of rows repeating an earlier one, conformed and written as one row group of the staged
partition (warehouse/lake/row_groups.py). A partition that never reaches that size is written
whole, as it always was. One that does is written group by group, and afterwards DuckDB, within
``INGEST_DUCKDB_MEMORY`` and spilling the rest, finds rows repeating one of an earlier group and
writes the partition again without them: the duplicates found are exactly those of a partition
held whole, the first of equal rows in file order kept.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import polars as pl

from assets.repeats import repeated_rows
from schemas.model import Contract, conform
from warehouse.lake.files import flush, temp_path
from warehouse.lake.partitions import PendingPartition, discard_partition, stage_partition
from warehouse.lake.row_groups import StagedWriter
from warehouse.lake.views import sql_string
from warehouse.limits import FLUSH_BYTES, INGEST_DUCKDB_MEMORY
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

LINEAGE_COLUMNS = ("source_file", "source_line")


class TableSink:
    """One staging table's rows of one partition, from every file of it, as they are parsed."""

    def __init__(self, settings: Settings, contract: Contract, key: str | None, pseudonymiser: Pseudonymiser):
        self.settings, self.contract, self.key, self.pseudonymiser = settings, contract, key, pseudonymiser
        self.buffer: list[pl.DataFrame] = []
        self.buffered = 0
        self.writer: StagedWriter | None = None
        self.loaded: Counter = Counter()           # source file → rows kept
        self.duplicates: Counter = Counter()       # source file → rows repeating an earlier one
        self.pending: PendingPartition | None = None

    @property
    def rows(self) -> int:
        return sum(self.loaded.values())

    def add(self, frame: pl.DataFrame) -> None:
        """Rows of one file (``source_file`` set), in file order."""
        self.buffer.append(frame)
        self.buffered += frame.estimated_size()
        if self.buffered >= FLUSH_BYTES:
            if self.writer is None:
                self.writer = StagedWriter(self.settings, self.contract, self.key)
            self.writer.write(self._conformed())

    def _conformed(self) -> pl.DataFrame:
        frames, self.buffer, self.buffered = self.buffer, [], 0
        frame = pl.concat(frames, how="vertical_relaxed") if frames else self.contract.empty_frame()
        frame = self.pseudonymiser.pseudonymise(frame)
        duplicate = repeated_rows(frame, [c for c in frame.columns if c not in LINEAGE_COLUMNS])
        if duplicate.any():
            self.duplicates.update(frame.filter(duplicate).get_column("source_file").to_list())
            frame = frame.filter(~duplicate)
        for source, count in frame.group_by("source_file").len().iter_rows():   # not 1 M Python strings
            self.loaded[source] += count
        return conform(frame, self.contract)

    def finish(self) -> PendingPartition:
        """The staged partition: written whole when it is small, else its last group and then the
        duplicates across groups taken out."""
        try:
            if self.writer is None:
                self.pending = stage_partition(self.settings, self.contract, self.key, self._conformed())
            else:
                if self.buffer:
                    self.writer.write(self._conformed())
                self.pending = self.writer.finish()
                self._drop_repeats_across_groups()
        except BaseException:
            self.discard()
            raise
        return self.pending

    def discard(self) -> None:
        if self.pending is not None:
            discard_partition(self.pending)
        elif self.writer is not None:
            self.writer.discard()

    def _drop_repeats_across_groups(self) -> None:
        """Rows equal to an earlier row of another group: candidates by a hash of their values, then
        compared value by value (a hash collision never drops a row); the file written again without them."""
        staged = self.pending.staged
        content = ", ".join(_quoted(c) for c in pl.read_parquet_schema(staged) if c not in LINEAGE_COLUMNS)
        scan = f"read_parquet({sql_string(str(staged))}, file_row_number = true, hive_partitioning = false)"
        self.settings.duckdb_temp.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(":memory:", config={"memory_limit": INGEST_DUCKDB_MEMORY, "threads": 2,
                                                  "temp_directory": str(self.settings.duckdb_temp)})
        try:
            con.execute(f"""create temp table repeats as
                with shared as (select hash({content}) as h from {scan} group by h having count(*) > 1),
                candidates as (select * from {scan} where hash({content}) in (select h from shared))
                select file_row_number, source_file from (select file_row_number, source_file, row_number() over (
                    partition by {content} order by file_row_number) as nth from candidates) where nth > 1""")
            found = con.execute("select source_file, count(*) from repeats group by source_file").fetchall()
            if not found:
                return
            rewritten = temp_path(self.pending.path)
            try:
                # In file order (a parallel scan hands row groups on in any order); sorted within the memory limit.
                con.execute(f"""copy (select * exclude (file_row_number) from {scan}
                    where file_row_number not in (select file_row_number from repeats) order by file_row_number)
                    to {sql_string(str(rewritten))} (format parquet, compression zstd)""")
                flush(rewritten)
                rewritten.replace(staged)
            finally:
                Path(rewritten).unlink(missing_ok=True)
        finally:
            con.close()
        for source, count in found:
            self.loaded[source] -= count
            self.duplicates[source] += count


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

