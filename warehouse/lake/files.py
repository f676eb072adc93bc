"""Writing a file atomically: the one way Shuku replaces a file it keeps.

A file is written to a hidden temporary name in its final folder, flushed, then renamed over
the old one, so a reader sees the old file or the new one, never half of one. Temporary names
carry the writer's process id, so a temporary file left by a writer that died (a crash, a kill)
is recognised and removed by the next writer of the folder. A write the home folder cannot take
(a full disk, a read-only file system) raises StorageError, saying that nothing stored changed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

import polars as pl

from warehouse.lake.paths import TMP_PREFIX
from warehouse.settings import Settings

TMP_SUFFIX = ".partial"
# Temporary files without a writer's pid in their name (older code) count as stale after this.
UNOWNED_TMP_AGE_S = 600
# A run refuses to start with less free space than this on the home folder's disk.
MIN_FREE_BYTES = 32 * 1024 * 1024

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


def os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind a library's exception (polars and DuckDB wrap it), from its chain or its message."""
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


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def flush(path: Path) -> None:
    """Make a file's bytes durable before it is renamed into place."""
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def write_beside(path: Path, write: Callable[[Path], object], mode: int | None = None) -> Path:
    """Call ``write(tmp)`` for a hidden temporary name beside ``path`` and flush it; returns that
    name. ``mode``: the file's permissions from its creation on (a secret is never readable by
    others, not even while it is written). A failure removes the temporary file and leaves
    ``path`` as it was."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise (storage_error(exc, path.parent, "creating the folder of") or exc) from exc
    tmp = temp_path(path)
    try:
        if mode is not None:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            os.chmod(tmp, mode)          # exactly ``mode``, whatever the umask
        write(tmp)
        flush(tmp)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise (storage_error(exc, path) or exc) from exc
        cause = os_error_in(exc) if isinstance(exc, Exception) else None
        if cause is not None and (clear := storage_error(cause, path)) is not None:
            raise clear from exc
        raise
    return tmp


def put_in_place(tmp: Path, path: Path) -> None:
    """Rename a flushed temporary file over ``path`` and flush the folder."""
    try:
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise (storage_error(exc, path) or exc) from exc


def write_atomic(path: Path, write: Callable[[Path], object], mode: int | None = None) -> None:
    """Replace ``path`` with what ``write(tmp)`` writes, through a temporary file and a rename;
    a failure leaves ``path`` as it was."""
    tmp = write_beside(path, write, mode)
    try:
        put_in_place(tmp, path)
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> int:
    """Write ``frame`` to ``path`` atomically. Returns bytes written."""
    write_atomic(path, lambda tmp: write_parquet(frame, tmp))
    return path.stat().st_size


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """The lake's Parquet settings (zstd, column statistics)."""
    frame.write_parquet(path, compression="zstd", statistics=True)


def write_text_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write a small text file (a state record, a page) atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), mode)


def read_record(path: Path, version: int, key: str):
    """``key`` of a small JSON state record written by `write_record`, or None when the file is
    missing, unreadable or of another version (the caller then rebuilds it from the log it keeps)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get(key) if isinstance(record, dict) and record.get("version") == version else None


def write_record(path: Path, version: int, key: str, value, indent: int | None = None) -> None:
    """Write a small JSON state record ``{"version": version, key: value}`` atomically."""
    write_text_atomic(path, json.dumps({"version": version, key: value}, indent=indent))


def write_bytes_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace a file's bytes atomically."""
    write_atomic(path, lambda tmp: tmp.write_bytes(data), mode)


def sha256_of(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file's bytes."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


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
    lineage, the home's own files such as warehouse.duckdb); called when a run starts. Returns how
    many were removed."""
    removed = clean_temp_files(settings.home) if settings.home.exists() else 0
    for root in (settings.lake, settings.quarantine, settings.restricted, settings.lineage_dir):
        if root.exists():
            removed += clean_temp_files(root, recursive=True)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", removed)
    return removed
