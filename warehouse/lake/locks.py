"""Write locks of the lake's tables: two runs never interleave their writes of one table.

A lock is an flock on ``locks/<layer.table>.lock``, released by the kernel when its holder dies,
so a killed run never leaves a table locked; readers take no lock.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from warehouse.lake.files import read_record, storage_error, write_record
from warehouse.lake.paths import lock_path
from warehouse.settings import Settings

log = logging.getLogger("shuku.storage")

# Lock files held by this process: path → (file descriptor, depth), so a writer that already
# holds a table's lock (an ingest over its partition) can call helpers that take it again.
_held: dict[Path, list[int]] = {}


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

    Waits while another process holds one, at most ``SHUKU_LOCK_WAIT`` seconds, then raises
    LockTimeout naming the holder. Re-entrant within a process; names are taken in sorted
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


def update_record(settings: Settings, path: Path, version: int, key: str, replay, apply, indent: int | None = None) -> None:
    """Bring a small JSON state record up to date under its own lock: ``apply(value)`` changes the
    stored value in place; a home without a (current) record gets ``replay()``, rebuilt from the
    log the record is kept beside (which already holds what ``apply`` would add)."""
    with table_lock(settings, f"meta.{path.stem}"):
        value = read_record(path, version, key)
        if value is None:
            value = replay()
        else:
            apply(value)
        write_record(path, version, key, value, indent)
