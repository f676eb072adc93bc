"""Damaged Parquet files: found against the checksums kept in meta.file_checksums and rebuilt
from landing by `shuku repair`, on real partitions written by real runs."""

from __future__ import annotations

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from pipelines.cli import main
from schemas.model import conform, contract_for
from warehouse.integrity import ALTERED, TRUNCATED, verify
from warehouse.lake.files import sha256_of
from warehouse.lake.partitions import write_partition
from warehouse.lake.paths import checksum_record_path
from warehouse.lake.views import compute_connection
from warehouse.settings import Settings


def _truncate(path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _flip(path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x10
    path.write_bytes(bytes(data))


def test_every_partition_written_keeps_its_checksum_and_damage_is_told_apart(_home):
    settings = Settings(_home).ensure()
    contract = contract_for("staging.gate_count")
    frame = conform(contract.empty_frame(), contract)
    paths = [write_partition(settings, contract, day, frame) for day in ("2025-09-01", "2025-09-02", "2025-09-03")]
    record = pl.read_parquet(checksum_record_path(settings, paths[0]))
    assert record.row(0, named=True)["file_sha256"] == sha256_of(paths[0])[0]
    assert record.row(0, named=True)["partition_path"].endswith("=2025-09-01")
    assert record.row(0, named=True)["table_name"] == "staging.gate_count"
    assert verify(settings)[0] == []

    _truncate(paths[0])
    _flip(paths[1])
    problems, checked = verify(settings)
    assert checked == 3
    assert {(p.file_path.split("/")[-2][-10:], p.problem) for p in problems} == {
        ("2025-09-01", TRUNCATED), ("2025-09-02", ALTERED)}
    # The records are a table too.
    con = compute_connection(settings, ["meta.file_checksums"])
    try:
        assert con.execute("SELECT count(*) FROM meta.file_checksums WHERE table_name = 'staging.gate_count'"
                           ).fetchone()[0] == 3
    finally:
        con.close()


@pytest.fixture
def loaded(_home, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(_home / "dagster"))
    runner = CliRunner()
    made = runner.invoke(main, ["generate", "--scale", "tiny", "--days", "2", "--seed", "5"])
    assert made.exit_code == 0, made.output
    ran = runner.invoke(main, ["run", "--select", "turnstile,catalogue", "--no-models"])
    assert ran.exit_code == 0, ran.output
    return Settings(_home)


@pytest.mark.slow
def test_repair_finds_truncated_and_bit_flipped_partitions_and_rebuilds_them_from_landing(loaded):
    settings = loaded
    staging = settings.lake / "staging" / "gate_event"
    day1 = staging / "event_date=2025-09-01" / "part-0.parquet"
    day2 = staging / "event_date=2025-09-02" / "part-0.parquet"
    quarantined = settings.quarantine / "gates" / "staging_table=gate_event" / "partition_key=2025-09-01" / "part-0.parquet"
    items = settings.lake / "staging" / "item" / "part-0.parquet"
    damaged = [day1, day2, quarantined, items]
    before = {p: pl.read_parquet(p, hive_partitioning=False) for p in damaged}
    assert quarantined.exists() and before[quarantined].height > 0

    _truncate(day1)
    truncated_size = day1.stat().st_size
    _flip(day2)
    _flip(quarantined, 0.3)
    _truncate(items, 0.2)
    runner = CliRunner()
    checked = runner.invoke(main, ["repair", "--check"])
    assert checked.exit_code == 1, checked.output
    for path in damaged:
        assert path.name in checked.output and path.parent.name in checked.output
    assert "truncated" in checked.output and "altered" in checked.output
    assert day1.stat().st_size == truncated_size          # --check changed nothing
    assert {p.problem for p in verify(settings)[0]} == {TRUNCATED, ALTERED}

    repaired = runner.invoke(main, ["repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "reload turnstile 2025-09-01" in repaired.output and "reload turnstile 2025-09-02" in repaired.output
    assert "reload catalogue snapshot" in repaired.output
    for path in damaged:     # the same rows again (quarantine: by a new run)
        after = pl.read_parquet(path, hive_partitioning=False)
        assert_frame_equal(after.drop("run_id", strict=False), before[path].drop("run_id", strict=False))
    assert verify(settings)[0] == []
    kept = list((settings.home / "damaged").rglob("part-0.parquet"))
    assert len(kept) == len(damaged)
    assert runner.invoke(main, ["repair"]).exit_code == 0


@pytest.mark.slow
def test_repair_says_what_it_could_not_rebuild_when_landing_is_gone(loaded):
    settings = loaded
    day1 = settings.lake / "staging" / "gate_event" / "event_date=2025-09-01" / "part-0.parquet"
    _flip(day1)
    (settings.landing / "gates" / "turnstile_2025-09-01.csv.gz").unlink()
    result = CliRunner().invoke(main, ["repair"])
    assert result.exit_code == 1, result.output
    assert "wrote nothing for it" in result.output and "landing" in result.output
    assert "damaged file(s) remain" in result.output
    assert list((settings.home / "damaged").rglob("part-0.parquet"))    # the damaged copy is kept
