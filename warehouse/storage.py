"""The lake: Parquet files, Hive-partitioned, written atomically, with DuckDB views over them.

Layout under the home folder:
  lake/<layer>/<table>/<partition_column>=<key>/part-0.parquet   (partitioned tables)
  lake/<layer>/<table>/part-0.parquet                           (whole tables)
  quarantine/<source>/staging_table=<t>/partition_key=<k>/part-0.parquet
A file is written to a hidden temporary name in its final folder, flushed, then renamed
over the old one, so a reader sees the old partition or the new one, never half of one.
Temporary names do not end in ``.parquet``, so the views' globs never read a file being
written, and they carry the writer's process id, so a temporary file left by a writer that
died (a crash, a kill) is recognised and removed by the next writer of the folder.
Writers of a table take its lock (``table_lock``): two runs never interleave their writes
of one table; readers take no lock.
The partition column lives in the folder name, not in the file (readers get it back
through hive partitioning, typed from the contract).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import socket
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from schemas.model import Contract, load_contracts
from schemas.vocabulary import DAY
from warehouse.homepaths import duckdb_config, relative, views_with_absolute_paths
from warehouse.settings import Settings

PART_FILE = "part-0.parquet"
# The SHA-256 and size of each partition file, one small record file per data file, at the data
# file's own path below this folder (lake/meta/file_checksums/lake/staging/…/part-0.parquet).
CHECKSUMS_TABLE = "meta.file_checksums"
TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".partial"
# Temporary files without a writer's pid in their name (older code) count as stale after this.
UNOWNED_TMP_AGE_S = 600

log = logging.getLogger("shuku.storage")


class StorageError(RuntimeError):
    """The home folder cannot take a write (disk full, read-only, no permission): nothing stored changed."""


_HOME_PROBLEMS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def storage_error(exc: OSError, path: Path, what: str = "writing") -> StorageError | None:
    """A clear error for an OSError that means the home folder cannot be written, else None."""
    problem = _HOME_PROBLEMS.get(exc.errno)
    if problem is None:
        return None
    fix = ("free some space (or move SHUKU_HOME to a larger disk)" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
           else "make the home folder writable for this user (or point SHUKU_HOME elsewhere)")
    return StorageError(f"{what} {path}: {problem} ({os.strerror(exc.errno)}). Nothing stored was changed: "
                        f"the previous file is still in place. {fix.capitalize()}, then re-run.")


# A run refuses to start with less free space than this on the home folder's disk.
MIN_FREE_BYTES = 32 * 1024 * 1024


def check_home_writable(settings: Settings, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Raise StorageError, before a run changes anything, when the home folder cannot take writes."""
    probe = temp_path(settings.home / "probe")
    try:
        try:
            with open(probe, "wb") as fh:
                fh.write(b"\0" * 4096)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        raise (storage_error(exc, settings.home, "writing in") or exc) from None
    free = shutil.disk_usage(settings.home).free
    if free < min_free_bytes:
        raise StorageError(
            f"{settings.home}: only {free / 2**20:.1f} MB free on its disk, and a run needs at least "
            f"{min_free_bytes / 2**20:.0f} MB. Nothing was changed. Free some space (or move SHUKU_HOME to a "
            "larger disk), then re-run.")


def temp_path(path: Path) -> Path:
    """A hidden temporary name beside ``path``, owned by this process."""
    return path.parent / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{TMP_SUFFIX}"


def _writer_alive(tmp: Path) -> bool | None:
    """Whether the process that owns a temporary file still runs (None when its name has no pid)."""
    head = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
    if not head.isdigit() or "-" not in tmp.name[len(TMP_PREFIX):]:
        return None
    pid = int(head)
    if pid == os.getpid():
        return False        # this process is not writing it now: whoever calls the sweep owns the folder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(tmp: Path, now: float) -> bool:
    alive = _writer_alive(tmp)
    if alive is None:
        try:
            return now - tmp.stat().st_mtime >= UNOWNED_TMP_AGE_S
        except FileNotFoundError:
            return False
    return not alive


# Lock files held by this process: path → (file descriptor, depth), so a writer that already
# holds a table's lock (an ingest over its partition) can call helpers that take it again.
_held: dict[Path, list[int]] = {}


def lock_path(settings: Settings, name: str) -> Path:
    return settings.home / "locks" / f"{name}.lock"


class LockTimeout(RuntimeError):
    """Another process held a table's write lock for longer than this one would wait."""


def lock_holder(path: Path) -> str:
    """Who holds a lock file, as its holder wrote it when it took the lock."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "a process that did not say who it is"


def _acquire(fd: int, settings: Settings, name: str, path: Path) -> None:
    """Take the flock on ``fd``, waiting at most ``settings.lock_wait_s``, then say who holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        wait = settings.lock_wait_s
        log.info("%s: another run is writing it (%s); waiting up to %.0f s.", name, lock_holder(path), wait)
        deadline = time.monotonic() + wait
        while True:
            time.sleep(min(0.2, max(wait, 0.01)))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{name}: waited {wait:.0f} s for its write lock ({path}), held by {lock_holder(path)}; "
                        "gave up, nothing of it was changed. Let that run finish (or stop it), then re-run; "
                        "SHUKU_LOCK_WAIT sets how many seconds to wait.") from None
    # Say who holds it, for a writer that has to wait (the file is never read as data).
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    # The program and its subcommand only: an option's value (`--card=…`) never goes into the lock file.
    words = [os.path.basename(sys.argv[0])] if sys.argv and sys.argv[0] else []
    words += [a for a in sys.argv[1:2] if not a.startswith("-")]
    command = " ".join(words)
    holder = f"pid {os.getpid()} on {socket.gethostname()} ({command or 'python'}), since {since}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, holder.encode("utf-8", "replace"), 0)


@contextmanager
def table_lock(settings: Settings, *names: str):
    """Hold the write lock of each named table (``layer.table``) while the block runs.

    Waits while another process holds one (an flock: released by the kernel when its holder
    dies, so a killed run never leaves a table locked), at most ``SHUKU_LOCK_WAIT`` seconds, then
    raises LockTimeout naming the holder. Re-entrant within a process; names are taken in sorted
    order, so two writers of overlapping tables cannot deadlock.
    """
    taken: list[Path] = []
    try:
        for name in sorted(set(names)):
            path = lock_path(settings, name)
            if path in _held:
                _held[path][1] += 1
                taken.append(path)
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise (storage_error(exc, path, "taking the write lock") or exc) from None
            try:
                _acquire(fd, settings, name, path)
            except BaseException:
                os.close(fd)
                raise
            _held[path] = [fd, 1]
            taken.append(path)
        yield
    finally:
        for path in reversed(taken):
            entry = _held[path]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[path]
                fcntl.flock(entry[0], fcntl.LOCK_UN)
                os.close(entry[0])


def partition_date(key: str, partitioning: str) -> dt.date:
    """The date a partition key stands for, as its folder is named: a day, or a month's first day."""
    return dt.date.fromisoformat(key if partitioning == DAY else f"{key}-01")


def table_dir(settings: Settings, contract: Contract) -> Path:
    if contract.layer == "quarantine":
        return settings.quarantine / contract.table
    return settings.lake / contract.layer / contract.table


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_through_temp(path: Path, write) -> None:
    """Call ``write(tmp)``, flush the file, rename it over ``path``; a failure leaves ``path`` as it was."""
    tmp = _write_beside(path, write)
    try:
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise (storage_error(exc, path) or exc) from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _write_beside(path: Path, write) -> Path:
    """Call ``write(tmp)`` for a hidden temporary name beside ``path`` and flush it; returns that
    name. A failure removes the temporary file and leaves ``path`` as it was."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise (storage_error(exc, path.parent, "creating the folder of") or exc) from exc
    tmp = temp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise (storage_error(exc, path) or exc) from exc
        # polars and DuckDB wrap the OS error in their own exception types.
        cause = _os_error_in(exc) if isinstance(exc, Exception) else None
        if cause is not None and (clear := storage_error(cause, path)) is not None:
            raise clear from exc
        raise
    return tmp


def _os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind a library's exception, from its chain or its message."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    for code in _HOME_PROBLEMS:
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code))
    return None


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> int:
    """Write ``frame`` to ``path`` through a temporary file and a rename. Returns bytes written."""
    _replace_through_temp(path, lambda tmp: frame.write_parquet(tmp, compression="zstd", statistics=True))
    return path.stat().st_size


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file (a state record) through a temporary file and a rename."""
    _replace_through_temp(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def sql_string(value) -> str:
    """A value (a path, a key) as a single-quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def partition_filter(contract: Contract, keys: list[str]) -> str:
    """SQL that keeps the rows of a partitioned table's partitions ``keys`` (their folder values)."""
    part = contract.partition_column
    listed = ", ".join(f"CAST({sql_string(key)} AS {part.physical_type})" for key in keys)
    return f'"{part.name}" IN ({listed})'


def partition_path(base: Path, parts: dict[str, str]) -> Path:
    for key, value in parts.items():
        base = base / f"{key}={value}"
    return base / PART_FILE


@dataclass(frozen=True)
class PendingPartition:
    """A partition written beside the one it replaces, under a hidden name no view reads: checked
    before `publish_partition` renames it into place, or dropped by `discard_partition`."""

    table: str          # layer.table
    key: str | None     # partition folder value (None: the whole table)
    path: Path          # the partition file it replaces
    staged: Path        # the new data, beside it


def stage_partition(settings: Settings, contract: Contract, key: str | None, frame: pl.DataFrame) -> PendingPartition:
    """Write ``frame`` as the next version of one partition (or of the whole table when ``key`` is
    None) beside the stored one, which readers keep seeing until it is published."""
    base = table_dir(settings, contract)
    part = contract.partition_column
    if part is not None and key is None:
        raise ValueError(f"{contract.qualified_name} is partitioned by {part.name}: name the partition to write")
    if part is None:
        path = base / PART_FILE
    else:
        path, frame = partition_path(base, {part.name: key}), frame.drop(part.name)
    staged = _write_beside(path, lambda tmp: frame.write_parquet(tmp, compression="zstd", statistics=True))
    return PendingPartition(contract.qualified_name, key, path, staged)


def publish_partition(settings: Settings, pending: PendingPartition) -> Path:
    """Rename a staged partition over the stored one (under the table's lock) and keep its checksum."""
    with table_lock(settings, pending.table):
        try:
            os.replace(pending.staged, pending.path)
            fsync_dir(pending.path.parent)
        except OSError as exc:
            raise (storage_error(exc, pending.path) or exc) from exc
        clean_temp_files(pending.path.parent)
        record_checksum(settings, pending.path)
    return pending.path


def discard_partition(pending: PendingPartition) -> None:
    """Drop a staged partition: the stored one stays as it was (a folder made for it alone goes)."""
    pending.staged.unlink(missing_ok=True)
    try:
        pending.path.parent.rmdir()         # only when empty: a new partition that was refused
    except OSError:
        pass


def write_partition(settings: Settings, contract: Contract, key: str | None, frame: pl.DataFrame) -> Path:
    """Replace one partition (or the whole table when ``key`` is None) with ``frame``."""
    with table_lock(settings, contract.qualified_name):
        return publish_partition(settings, stage_partition(settings, contract, key, frame))


def checksums_root(settings: Settings) -> Path:
    return settings.lake / "meta" / "file_checksums"


def checksum_record_path(settings: Settings, path: Path) -> Path:
    return checksums_root(settings) / Path(path).relative_to(settings.home)


def describe_file(settings: Settings, path: Path) -> tuple[str, str] | None:
    """(``layer.table``, partition folder) of a partition file of the lake or the quarantine, else None.

    Only ``part-0.parquet`` files are partitions; per-run files (ingest log, check results) are history.
    """
    path = Path(path)
    if path.name != PART_FILE:
        return None
    try:
        relative = path.relative_to(settings.lake)
        parts = relative.parts
        if len(parts) < 3 or (parts[0] == "meta" and parts[1] == "file_checksums"):
            return None
        return f"{parts[0]}.{parts[1]}", "/".join(parts[2:-1])
    except ValueError:
        pass
    try:
        parts = path.relative_to(settings.quarantine).parts
    except ValueError:
        return None
    return (f"quarantine.{parts[0]}", "/".join(parts[1:-1])) if len(parts) >= 2 else None


def sha256_of(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file's bytes."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def record_checksum(settings: Settings, path: Path) -> None:
    """Keep the SHA-256 and size of a partition file just written, in meta.file_checksums.

    Called by every writer of a partition file, under the table's lock, after the rename.
    """
    described = describe_file(settings, path)
    if described is None:
        return
    sha, size = sha256_of(path)
    frame = pl.DataFrame({
        "file_path": [str(Path(path).relative_to(settings.home))], "table_name": [described[0]],
        "partition_path": [described[1]], "file_sha256": [sha], "file_bytes": [size],
        "written_at": [dt.datetime.now(dt.UTC).replace(tzinfo=None)]},
        schema={"file_path": pl.Utf8, "table_name": pl.Utf8, "partition_path": pl.Utf8, "file_sha256": pl.Utf8,
                "file_bytes": pl.Int64, "written_at": pl.Datetime("us")})
    write_parquet_atomic(frame, checksum_record_path(settings, path))


def write_table(settings: Settings, contract: Contract, frame: pl.DataFrame) -> Path:
    """Replace a whole table with ``frame``; of a partitioned table, every partition (one per value
    of the partition column in ``frame``, the others removed). Returns the table's folder for a
    partitioned table, its file otherwise."""
    part = contract.partition_column
    if part is None:
        return write_partition(settings, contract, None, frame)
    base = table_dir(settings, contract)
    with table_lock(settings, contract.qualified_name):
        keys = {str(value) for value in frame.get_column(part.name).unique().to_list()}
        if "None" in keys:
            raise ValueError(f"{contract.qualified_name}: a row without {part.name} cannot be placed in a partition")
        for key in sorted(keys):
            write_partition(settings, contract, key, frame.filter(pl.col(part.name).cast(pl.Utf8) == key))
        for folder in sorted(base.glob(f"{part.name}=*")):
            if folder.name.split("=", 1)[1] not in keys:
                _remove_partition(settings, folder / PART_FILE)
    return base


def write_table_if_changed(settings: Settings, contract: Contract, frame: pl.DataFrame) -> tuple[Path, bool]:
    """Replace an unpartitioned table with ``frame`` unless its file already holds exactly these
    rows; returns the path and whether it was written. An unchanged file keeps its modification
    time, so what is built from it (the published role databases) need not be copied again."""
    path = table_dir(settings, contract) / PART_FILE
    try:
        if path.exists() and pl.read_parquet(path).equals(frame):
            return path, False
    except (OSError, pl.exceptions.PolarsError):
        pass
    return write_table(settings, contract, frame), True


def files_digest(settings: Settings, contract: Contract) -> str:
    """A digest of a table's files as they are now (relative path, size, modification time of each):
    it changes whenever any file of the table is written, added or removed."""
    base = table_dir(settings, contract)
    digest = hashlib.sha256()
    if base.exists():
        for path in sorted(p for p in base.rglob("*.parquet") if not p.name.startswith(TMP_PREFIX)):
            stat = path.stat()
            digest.update(f"{path.relative_to(base)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def partition_stamps(settings: Settings, contract: Contract) -> dict[str, list[int]]:
    """{partition date: [size, modification time in ns]} of a partitioned table's files."""
    base, part = table_dir(settings, contract), contract.partition_column
    stamps = {}
    for path in sorted(base.glob(f"{part.name}=*/{PART_FILE}")) if base.exists() else []:
        stat = path.stat()
        stamps[path.parent.name.split("=", 1)[1]] = [stat.st_size, stat.st_mtime_ns]
    return stamps


def parquet_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def write_query_partitions(settings: Settings, contract: Contract, con: duckdb.DuckDBPyConnection, sql: str,
                           days: list[str]) -> dict[str, int]:
    """Replace the partitions ``days`` of a day-partitioned table with the rows of ``sql`` on those
    days, under the table's lock; a day without rows loses its partition. Returns the rows of each
    day written.

    DuckDB writes every day at once into a hidden folder beside the table (never read by the
    table's view), then each file is flushed and renamed into place: a failure leaves each
    partition either as it was or as it is now, never half-written.
    """
    base, part = table_dir(settings, contract), contract.partition_column
    if not days:
        return {}
    staging = base.parent / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}-{contract.table}"
    rows = {}
    with table_lock(settings, contract.qualified_name):
        try:
            staging.mkdir(parents=True)
            con.execute(f"COPY (SELECT * FROM ({sql}) WHERE {partition_filter(contract, days)}) "
                        f'TO {sql_string(staging)} (FORMAT parquet, PARTITION_BY ("{part.name}"), COMPRESSION zstd)')
            for day in days:
                path = partition_path(base, {part.name: day})
                written = sorted((staging / f"{part.name}={day}").glob("*.parquet"))
                if not written:
                    if path.exists():
                        _remove_partition(settings, path)
                    continue
                if len(written) == 1:
                    _replace_through_temp(path, lambda tmp, f=written[0]: os.replace(f, tmp))
                else:
                    files = ", ".join(sql_string(f) for f in written)
                    merged = f"SELECT * FROM read_parquet([{files}], hive_partitioning = false)"
                    copy_query_to_parquet(con, merged, path)
                rows[day] = parquet_rows(path)
                clean_temp_files(path.parent)
                record_checksum(settings, path)
        except Exception as exc:
            # DuckDB wraps the OS error (a full disk, a read-only home) in its own exception type.
            cause = exc if isinstance(exc, OSError) else _os_error_in(exc)
            if cause is not None and (clear := storage_error(cause, base)) is not None:
                raise clear from exc
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return rows


def _remove_partition(settings: Settings, path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)
    shutil.rmtree(checksum_record_path(settings, path).parent, ignore_errors=True)
    fsync_dir(path.parent.parent)


def remove_partitions(settings: Settings, contract: Contract, days: list[str]) -> None:
    """Remove the partitions ``days`` of a partitioned table (their inputs are gone), under its lock."""
    base, part = table_dir(settings, contract), contract.partition_column
    with table_lock(settings, contract.qualified_name):
        for day in days:
            _remove_partition(settings, partition_path(base, {part.name: day}))


def clean_temp_files(folder: Path, recursive: bool = False) -> int:
    """Remove the temporary files (and build folders) that writers which died (a crash, a kill)
    left in ``folder``.

    A temporary file whose writer still runs is left alone. Returns how many were removed.
    """
    removed = 0
    now = time.time()
    for tmp in list((folder.rglob if recursive else folder.glob)(f"{TMP_PREFIX}*")):
        if tmp.is_file() and _is_stale(tmp, now):
            tmp.unlink(missing_ok=True)
            removed += 1
        elif tmp.is_dir() and _is_stale(tmp, now):
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
    return removed


def sweep_temp_files(settings: Settings) -> int:
    """Remove stale temporary files everywhere a run writes (lake, quarantine, restricted area,
    lineage); called when a run starts. Returns how many were removed."""
    removed = 0
    for root in (settings.lake, settings.quarantine, settings.restricted, settings.lineage_dir):
        if root.exists():
            removed += clean_temp_files(root, recursive=True)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", removed)
    return removed


def _glob(settings: Settings, contract: Contract) -> str:
    """The table's files, relative to the home (read through the connection's file_search_path)."""
    return f"{relative(settings, table_dir(settings, contract))}/**/*.parquet"


def has_data(settings: Settings, contract: Contract) -> bool:
    base = table_dir(settings, contract)
    return base.exists() and any(p for p in base.rglob("*.parquet") if not p.name.startswith(TMP_PREFIX))


def view_sql(settings: Settings, contract: Contract, days: list[str] | None = None) -> str:
    """``CREATE OR REPLACE VIEW`` for a table: over its files, or typed and empty when it has none.
    ``days``: only those partitions of a partitioned table (a model built day by day)."""
    columns = ", ".join(f'"{c.name}"' for c in contract.columns)
    files = []
    if days is not None:
        part = contract.partition_column
        files = [p for p in (partition_path(table_dir(settings, contract), {part.name: d}) for d in days) if p.exists()]
    if files:
        types = f"'{part.name}': {part.physical_type}"
        listed = ", ".join(sql_string(relative(settings, f)) for f in files)
        return (f"CREATE OR REPLACE VIEW {contract.qualified_name} AS SELECT {columns} FROM read_parquet("
                f"[{listed}], hive_partitioning = true, hive_types = {{{types}}}, union_by_name = true)")
    if days is None and has_data(settings, contract):
        hive_cols = [c for c in contract.columns if c.partitioned]
        if contract.layer == "quarantine":
            hive = "hive_partitioning = true, hive_types = {'staging_table': VARCHAR, 'partition_key': VARCHAR}"
        elif hive_cols:
            types = ", ".join(f"'{c.name}': {c.physical_type}" for c in hive_cols)
            hive = f"hive_partitioning = true, hive_types = {{{types}}}"
        else:
            hive = "hive_partitioning = false"
        source = f"read_parquet({sql_string(_glob(settings, contract))}, {hive}, union_by_name = true)"
        return f"CREATE OR REPLACE VIEW {contract.qualified_name} AS SELECT {columns} FROM {source}"
    typed = ", ".join(f'CAST(NULL AS {c.physical_type}) AS "{c.name}"' for c in contract.columns)
    return f"CREATE OR REPLACE VIEW {contract.qualified_name} AS SELECT {typed} WHERE false"


def create_views(con: duckdb.DuckDBPyConnection, settings: Settings, contracts: list[Contract] | None = None) -> None:
    """Create the schemas and a view per table on ``con``."""
    contracts = list(load_contracts().values()) if contracts is None else contracts
    for schema in sorted({c.layer for c in contracts}):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for contract in contracts:
        con.execute(view_sql(settings, contract))


def compute_connection(settings: Settings, tables: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per table (or per named ``layer.table``): models compute
    here, never holding warehouse.duckdb. Naming the tables saves binding every other view."""
    try:
        settings.duckdb_temp.mkdir(parents=True, exist_ok=True)     # DuckDB makes only its last level
    except OSError:
        pass                                                       # a read-only home: reading spills nothing
    con = duckdb.connect(":memory:", config={"threads": os.cpu_count() or 2,
                                              "memory_limit": settings.duckdb_memory_limit,
                                              "temp_directory": str(settings.duckdb_temp),
                                              **duckdb_config(settings)})
    con.execute("SET TimeZone = 'UTC'")
    contracts = load_contracts()
    create_views(con, settings, None if tables is None else [contracts[t] for t in dict.fromkeys(tables)])
    return con


def refresh_warehouse_views(settings: Settings, contracts: list[Contract] | None = None,
                            attempts: int = 40, wait_s: float = 0.25) -> None:
    """Refresh views in ``warehouse.duckdb`` in one short write, waiting while another process holds it.

    Views with absolute paths (an older home, or a copy of one) are all created again, relative."""
    settings.warehouse_db.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            con = duckdb.connect(str(settings.warehouse_db), config=duckdb_config(settings))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == attempts - 1:
                raise RuntimeError(
                    f"{settings.warehouse_db}: held by another process for {attempts * wait_s:.0f} s "
                    "(a DuckDB client left open?); close it and re-run.") from exc
            time.sleep(wait_s)
            continue
        try:
            if contracts is not None and views_with_absolute_paths(con):
                log.info("%s: views with absolute paths (an older or copied home); creating every view again.",
                         settings.warehouse_db)
                contracts = None
            create_views(con, settings, contracts)
        finally:
            con.close()
        return


def copy_query_to_parquet(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> None:
    """Run ``sql`` and write its result to ``path`` atomically (DuckDB's own Parquet writer)."""
    def write(tmp: Path) -> None:
        con.execute(f"COPY ({sql}) TO {sql_string(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    _replace_through_temp(path, write)


def write_query_table(settings: Settings, contract: Contract, con: duckdb.DuckDBPyConnection, sql: str) -> Path:
    """Replace a whole table with the result of ``sql`` (a model), under the table's lock."""
    path = table_dir(settings, contract) / PART_FILE
    with table_lock(settings, contract.qualified_name):
        copy_query_to_parquet(con, sql, path)
        clean_temp_files(path.parent)
        record_checksum(settings, path)
    return path


def remove_table(settings: Settings, contract: Contract) -> None:
    folder = table_dir(settings, contract)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(checksums_root(settings) / folder.relative_to(settings.home), ignore_errors=True)
