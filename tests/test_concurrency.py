"""Two runs writing the same partition at once, and a reader in a third process, all real processes.

The writers load the same turnstile day under different pseudonym keys, so whose rows a
file holds can be told apart: the partition must end as one writer's whole ingest (staging,
quarantine and ingest log from the same run), and every read in between sees one writer's
whole file, never half of one or a temporary file beside it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from assets.feeds import feed_named
from generator import generate
from schemas.model import conform, contract_for
from warehouse.lake.files import temp_path
from warehouse.lake.locks import table_lock
from warehouse.lake.partitions import write_partition
from warehouse.lake.paths import TMP_PREFIX, lock_path
from warehouse.lake.views import compute_connection
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import REPO_ROOT, Settings

DAY = "2025-09-01"
KEYS = {"a": "a1" * 32, "b": "b2" * 32}

WRITER = textwrap.dedent("""
    import sys
    from assets.feeds import feed_named
    from assets.ingest import ingest_partition
    from warehouse.library import load_library
    from warehouse.pseudonym import Pseudonymiser
    from warehouse.settings import Settings
    tag, rounds = sys.argv[1], int(sys.argv[2])
    settings = Settings.from_env()
    library = load_library(settings.library_config)
    pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
    for i in range(rounds):
        ingest_partition(feed_named("turnstile"), sys.argv[3], settings, library, pseudonymiser, f"{tag}-{i}")
""")

READER = textwrap.dedent("""
    import hashlib, json, sys, pathlib
    from warehouse.lake.views import compute_connection
    from warehouse.settings import Settings
    settings = Settings.from_env()
    stop, out = pathlib.Path(sys.argv[1]), open(sys.argv[2], "w")
    while not stop.exists():
        con = compute_connection(settings, ["staging.gate_event"])
        try:
            pids = sorted(p for (p,) in con.execute(
                "SELECT patron_pid FROM staging.gate_event WHERE patron_pid IS NOT NULL").fetchall())
            rows = con.execute("SELECT count(*) FROM staging.gate_event").fetchone()[0]
            out.write(json.dumps({"rows": rows, "pids": hashlib.sha256("".join(pids).encode()).hexdigest()}) + "\\n")
        except Exception as exc:
            out.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\\n")
        finally:
            con.close()
        out.flush()
        print("reading", flush=True)
""")


def _env(home: Path, key: str) -> dict[str, str]:
    return {**os.environ, "SHUKU_HOME": str(home), "SHUKU_PSEUDONYM_KEY": key, "PYTHONPATH": str(REPO_ROOT)}


def _script(code: str, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_writers_of_one_partition_never_interleave_and_a_reader_sees_whole_files(tmp_path, library, _home):
    settings = Settings(_home).ensure()
    generate(settings.landing, library, scale="tiny", seed=42, start=dt.date.fromisoformat(DAY), days=1)
    first = _script(WRITER, "a", "1", DAY, env=_env(_home, KEYS["a"]))
    assert first.wait(timeout=120) == 0, first.stderr.read()

    stop, reads = tmp_path / "stop", tmp_path / "reads.jsonl"
    reader = _script(READER, str(stop), str(reads), env=_env(_home, KEYS["a"]))
    assert reader.stdout.readline().strip() == "reading", reader.stderr.read()
    writers = [_script(WRITER, tag, "8", DAY, env=_env(_home, KEYS[tag])) for tag in ("a", "b")]
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read()
    stop.touch()
    assert reader.wait(timeout=60) == 0, reader.stderr.read()

    seen = [json.loads(line) for line in reads.read_text().splitlines()]
    assert len(seen) >= 3, "the reader read too seldom to see the writers at work"
    assert [s for s in seen if "error" in s] == []
    # Every read saw one writer's whole file: one row count, and the rows of key a or of key b.
    assert len({s["rows"] for s in seen}) == 1
    assert len({s["pids"] for s in seen}) <= 2

    # The partition ends as one run's ingest: staging rows, quarantine and ingest log agree.
    logs = sorted((settings.lake / "meta" / "ingest_log" / "turnstile" / DAY).glob("run-*.parquet"),
                  key=lambda p: p.stat().st_mtime_ns)
    last = pl.read_parquet(logs[-1])
    run_id = last.get_column("run_id")[0]
    quarantine = pl.read_parquet(settings.quarantine / "gates" / "staging_table=gate_event"
                                 / f"partition_key={DAY}" / "part-0.parquet")
    assert quarantine.height == last.get_column("rows_quarantined").sum()
    assert set(quarantine.get_column("run_id")) <= {run_id}
    staged = pl.read_parquet(settings.lake / "staging" / "gate_event" / f"event_date={DAY}" / "part-0.parquet")
    assert staged.height == last.get_column("rows_loaded").sum() == seen[-1]["rows"]
    landing = (settings.landing / "gates" / f"turnstile_{DAY}.csv.gz")
    card = feed_named("turnstile").parse(landing, library).rows.get_column("card_number").drop_nulls()[0]
    writer_key = KEYS[run_id.split("-")[0]]
    assert Pseudonymiser(key=bytes.fromhex(writer_key), version=1).pid(card) in set(staged.get_column("patron_pid"))
    assert not list(settings.home.rglob(f"{TMP_PREFIX}*"))


def test_a_file_being_written_is_not_read_by_the_views(_home):
    settings = Settings(_home).ensure()
    contract = contract_for("staging.gate_count")
    path = write_partition(settings, contract, DAY, conform(contract.empty_frame(), contract))
    temp_path(path).write_bytes(b"PAR1 half a file")      # another writer's file, mid-write
    con = compute_connection(settings, ["staging.gate_count"])
    try:
        assert con.execute("SELECT count(*) FROM staging.gate_count").fetchone()[0] == 0
    finally:
        con.close()


def test_a_table_lock_excludes_another_process_until_released(_home):
    settings = Settings(_home).ensure()
    probe = textwrap.dedent("""
        from warehouse.lake.locks import table_lock
        from warehouse.settings import Settings
        with table_lock(Settings.from_env(), "staging.gate_event"):
            print("got it")
    """)
    with table_lock(settings, "staging.gate_event"), table_lock(settings, "staging.gate_event"):
        other = _script(probe, env=_env(_home, KEYS["a"]))
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=3)          # still waiting: the lock is held here (re-entrantly)
    assert other.wait(timeout=60) == 0
    assert other.stdout.read().strip() == "got it"
    assert lock_path(settings, "staging.gate_event").exists()


def test_a_lock_held_by_a_killed_process_is_free_again(_home):
    settings = Settings(_home).ensure()
    holder = _script(textwrap.dedent("""
        import time
        from warehouse.lake.locks import table_lock
        from warehouse.settings import Settings
        with table_lock(Settings.from_env(), "core.fact_loan"):
            print("held", flush=True)
            time.sleep(600)
    """), env=_env(_home, KEYS["a"]))
    assert holder.stdout.readline().strip() == "held"
    fd = os.open(lock_path(settings, "core.fact_loan"), os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.kill()
        holder.wait()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # free at once: the kernel released it
    finally:
        os.close(fd)
