"""A full disk and a read-only home folder: a clear message, and nothing stored is damaged.

The home folder sits on a small tmpfs mounted for the test (the tests run as root, for whom
chmod does not stop writes): filled up for a full disk, remounted read-only for a read-only
home. The errors are the kernel's own ENOSPC and EROFS, raised in the real write paths.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from schemas.model import conform, contract_for
from warehouse.lake.files import StorageError
from warehouse.lake.partitions import write_partition
from warehouse.lake.paths import TMP_PREFIX, checksum_record_path
from warehouse.settings import REPO_ROOT, Settings

DAY = "2025-09-01"


@pytest.fixture
def disk(tmp_path):
    """A 96 MB tmpfs of its own; unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(mount)], capture_output=True, text=True)
    assert done.returncode == 0, f"this test needs root's mount (a tmpfs): {done.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> None:
    """Write until the disk is full, to the last block."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def _hashes(root: Path) -> dict[str, str]:
    """Every stored file's hash; not the filler, nor the lock files (they record their last holder and when)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("filler")
            and p.parent.name != "locks"}


def _frame(rows: int) -> pl.DataFrame:
    contract = contract_for("staging.gate_event")
    schema = contract.polars_schema()
    frame = pl.DataFrame({name: pl.Series(name, [None] * rows, dtype=dtype) for name, dtype in schema.items()})
    text = [n for n, t in schema.items() if t == pl.Utf8]
    return conform(frame.with_columns([pl.Series(n, [os.urandom(24).hex() for _ in range(rows)]) for n in text]),
                   contract)


def test_a_full_disk_fails_the_write_clearly_and_keeps_the_stored_partition(disk):
    settings = Settings(disk / "home").ensure()
    contract = contract_for("staging.gate_event")
    path = write_partition(settings, contract, DAY, _frame(50))
    stored = _hashes(settings.home)
    _fill(disk)
    with pytest.raises(StorageError, match=r"the disk is full .*Nothing stored was changed.*Free some space"):
        write_partition(settings, contract, DAY, _frame(20_000))
    assert _hashes(settings.home) == stored               # the partition and its checksum record as they were
    assert pl.read_parquet(path).height == 50
    assert not list(settings.home.rglob(f"{TMP_PREFIX}*"))
    assert checksum_record_path(settings, path).exists()


def test_a_read_only_home_fails_the_write_clearly_and_keeps_the_stored_partition(disk):
    settings = Settings(disk / "home").ensure()
    contract = contract_for("staging.gate_event")
    path = write_partition(settings, contract, DAY, _frame(50))
    stored = _hashes(settings.home)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    with pytest.raises(StorageError, match=r"read-only .*Nothing stored was changed.*writable"):
        write_partition(settings, contract, DAY, _frame(10))
    assert _hashes(settings.home) == stored
    assert pl.read_parquet(path).height == 50


def test_a_day_partitioned_model_on_a_full_disk_fails_clearly_and_keeps_its_partitions(disk):
    from warehouse.lake.partitions import write_query_partitions
    from warehouse.lake.views import compute_connection

    settings = Settings(disk / "home").ensure()
    contract = contract_for("core.fact_search")
    con = compute_connection(settings, [])
    try:
        def rows(n: int) -> str:
            return (f"SELECT TIMESTAMP '2025-09-01 08:00' + to_seconds(i) AS searched_at, "
                    f"DATE '2025-09-01' + CAST(i % 2 AS INTEGER) AS event_date, md5(i::VARCHAR) AS session_id, "
                    f"NULL::VARCHAR AS patron_pid, md5((i + 7)::VARCHAR) || md5(i::VARCHAR) AS query_normalised, "
                    f"'keyword' AS search_type, i AS hit_count, false AS zero_hit FROM range({n}) t(i)")
        days = ["2025-09-01", "2025-09-02"]
        assert write_query_partitions(settings, contract, con, rows(100), days) == {days[0]: 50, days[1]: 50}
        stored = _hashes(settings.home)
        _fill(disk)
        with pytest.raises(StorageError, match=r"the disk is full .*Free some space"):
            write_query_partitions(settings, contract, con, rows(2_000_000), days)
    finally:
        con.close()
    assert _hashes(settings.home) == stored          # both days and their checksum records as they were
    assert not list(settings.home.rglob(f"{TMP_PREFIX}*"))


def _shuku(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHUKU_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_shuku_run_on_a_full_disk_or_a_read_only_home_says_so_and_changes_nothing(disk):
    home = disk / "home"
    assert _shuku(home, "generate", "--scale", "tiny", "--days", "1", "--seed", "4").returncode == 0
    first = _shuku(home, "run", "--select", "turnstile", "--no-models")
    assert first.returncode == 0, first.stderr
    stored = _hashes(home)

    _fill(disk)
    full = _shuku(home, "run", "--select", "turnstile", "--no-models")
    assert full.returncode == 1, full.stderr
    assert "the disk is full" in full.stderr or "MB free on its disk" in full.stderr, full.stderr
    assert "Traceback" not in full.stderr + full.stdout
    assert _hashes(home) == stored
    for filler in disk.glob("filler*"):
        filler.unlink()

    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    read_only = _shuku(home, "run", "--select", "turnstile", "--no-models")
    assert read_only.returncode == 1, read_only.stderr
    assert "read-only" in read_only.stderr and "Traceback" not in read_only.stderr + read_only.stdout
    assert _hashes(home) == stored
    # Reading still works on a read-only home.
    counted = _shuku(home, "sql", "select count(*) as n from staging.gate_event", "--format", "json")
    assert counted.returncode == 0, counted.stderr
    assert '"n": ' in counted.stdout
