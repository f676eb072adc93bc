"""`shuku run` killed (SIGKILL) at random points: every stored file stays whole, the next run
completes, and no temporary file is left after it. Real processes, a real home folder."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from lineage.store import read_events
from warehouse.integrity import verify
from warehouse.lake.paths import TMP_PREFIX
from warehouse.settings import REPO_ROOT, Settings

KILLS = 4
SEED = 10


def _shuku(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "SHUKU_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _assert_every_file_whole(settings: Settings) -> int:
    """Every Parquet file a reader could open reads whole; the DuckDB files open. Returns files read."""
    read = 0
    for path in settings.home.rglob("*.parquet"):
        if path.name.startswith(TMP_PREFIX) or "landing" in path.relative_to(settings.home).parts:
            continue
        pq.read_table(path)
        read += 1
    for database in [settings.warehouse_db, *settings.access_dir.glob("*.duckdb")]:
        if database.exists():
            duckdb.connect(str(database), read_only=True).close()
    read_events(settings)      # a line cut short is skipped, never an error
    return read


def _leftovers(settings: Settings) -> list[str]:
    return sorted(str(p.relative_to(settings.home)) for p in settings.home.rglob("*")
                  if p.name.startswith(TMP_PREFIX) or p.name.endswith(".duckdb.tmp"))


@pytest.mark.slow
def test_a_run_killed_at_random_points_leaves_every_file_whole_and_the_next_run_completes(_home):
    settings = Settings(_home)
    made = _shuku(_home, "generate", "--scale", "tiny", "--days", "2", "--seed", "11")
    assert made.wait(timeout=300) == 0, made.stdout.read()
    rng = random.Random(SEED)
    killed = 0
    for _ in range(KILLS):
        run = _shuku(_home, "run")
        time.sleep(rng.uniform(2.0, 25.0))
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            killed += 1
        run.wait(timeout=120)
        run.stdout.close()
        _assert_every_file_whole(settings)
    assert killed >= 2, "the runs ended before they could be killed: kill earlier"

    final = _shuku(_home, "run")
    try:
        output = final.communicate(timeout=600)[0]
    finally:
        if final.poll() is None:
            os.killpg(final.pid, signal.SIGKILL)
    assert final.returncode == 0, output
    assert _assert_every_file_whole(settings) > 20
    assert _leftovers(settings) == []
    assert verify(settings)[0] == []          # every partition file matches the checksum kept for it


def test_temporary_files_of_dead_writers_are_removed_when_a_run_starts(_home):
    from warehouse.lake.files import sweep_temp_files, temp_path

    settings = Settings(_home).ensure()
    folder = settings.lake / "staging" / "gate_event" / "event_date=2025-09-01"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = folder / f"{TMP_PREFIX}{dead.pid}-0123abcd.partial"
    stale.write_bytes(b"PAR1 cut short")
    live = temp_path(folder / "part-0.parquet")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = folder / f"{TMP_PREFIX}{sleeper.pid}-4567cdef.partial"   # a writer still at work
        mine.write_bytes(b"PAR1 being written")
        assert sweep_temp_files(settings) == 1
        assert not stale.exists() and mine.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sweep_temp_files(settings) == 1 and not mine.exists()
    assert not live.exists()
