"""The keyed audit trail attacked by someone who can write the lake but not read the audit key:
each attack, made with Shuku's own code where it helps, fails `shuku audit verify` with the
exact problem named; a trail chained before keys is refused until `shuku audit rekey`."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from warehouse.audit import HEAD_FILE, UnkeyedTrail, entries, entry_hash, log_dir, verify
from warehouse.audit_anchor import ANCHOR_ALERT, anchor_commands, current_anchors, verify_trail
from warehouse.audit_key import AUDIT_KEY_FILE
from warehouse.audit_rekey import rekey
from warehouse.guard import guard
from warehouse.guarded import log_access
from warehouse.settings import Settings

LOG = "meta.access_log"


def _query(settings: Settings, n: int) -> None:
    log_access(settings, role="analyst", user="staff", sql=f"SELECT {n}", decision=guard("SELECT 1", "analyst"),
               outcome="allowed", rows_returned=1)


@pytest.fixture
def home(tmp_path) -> Settings:
    settings = Settings(tmp_path / "home").ensure()
    for n in range(5):
        _query(settings, n)
    return settings


def _problem(settings: Settings, anchors=()) -> str | None:
    return {r.log: r for r in verify_trail(settings, list(anchors))}[LOG].problem


def _write_row(settings, entry, row: dict) -> None:
    frame = pl.read_parquet(settings.home / entry.file)
    pl.DataFrame([row], schema=frame.schema).write_parquet(settings.home / entry.file)


def test_the_clean_trail_verifies_and_the_key_is_outside_the_lake(home):
    assert _problem(home) is None
    key = home.secrets_dir / AUDIT_KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600 and home.lake not in key.parents


def test_an_edit_is_named(home):
    victim = entries(home, LOG)[2]
    _write_row(home, victim, {**victim.row, "outcome": "refused"})
    assert _problem(home).startswith("changed: entry 3 ")


def test_a_forged_entry_made_with_shukus_code_but_without_the_key_is_named(home):
    victim = entries(home, LOG)[2]
    row = {**victim.row, "sql_text": "SELECT 42"}
    row["entry_hash"] = entry_hash(LOG, victim.seq, victim.prev_hash, row)     # no key: what an attacker can compute
    _write_row(home, victim, row)
    assert _problem(home) == (f"changed: entry 3 ({victim.file} row 1) does not carry the hash the audit key "
                              "gives it: it was edited, or written without the key.")


def test_a_forged_entry_appended_without_the_key_is_named(home):
    last = entries(home, LOG)[-1]
    row = {**last.row, "entry_seq": 6, "prev_hash": last.entry_hash, "sql_text": "SELECT 'cover'"}
    row["entry_hash"] = entry_hash(LOG, 6, last.entry_hash, row)
    path = (home.home / last.file).with_name("forged.parquet")
    pl.DataFrame([row], schema=pl.read_parquet(home.home / last.file).schema).write_parquet(path)
    assert _problem(home).startswith("changed: entry 6 ")


def test_a_deleted_entry_is_named(home):
    held = entries(home, LOG)
    (home.home / held[1].file).unlink()
    assert _problem(home).startswith("removed: entry 2 is missing (the log goes from entry 1 to entry 3")


def test_an_inserted_copy_of_a_real_entry_is_named(home):
    """Replay: an entry that verifies, copied in again."""
    held = entries(home, LOG)
    shutil.copy(home.home / held[1].file, (home.home / held[1].file).with_name("replayed.parquet"))
    assert _problem(home).startswith("inserted: ") and "claims position 2" in _problem(home)


def test_reordered_entries_are_named(home):
    held = entries(home, LOG)
    a, b = home.home / held[1].file, home.home / held[2].file
    frame_a, frame_b = pl.read_parquet(a), pl.read_parquet(b)
    frame_b.with_columns(pl.lit(2, pl.Int64).alias("entry_seq")).write_parquet(a)
    frame_a.with_columns(pl.lit(3, pl.Int64).alias("entry_seq")).write_parquet(b)
    assert _problem(home).startswith("changed: entry 2 ")


def test_a_log_cut_back_with_a_head_written_for_it_is_named(home):
    held = entries(home, LOG)
    for entry in held[3:]:
        (home.home / entry.file).unlink()
    (log_dir(home, LOG) / HEAD_FILE).write_text(json.dumps({"log": LOG, "entry_seq": 3, "entry_hash": held[2].entry_hash,
                                                            "head_mac": "0" * 64}))
    assert _problem(home).startswith("changed: lake/meta/access_log/.chain-head.json was not written with the audit key")


def test_a_log_cut_back_with_its_head_deleted_is_named(home):
    for entry in entries(home, LOG)[3:]:
        (home.home / entry.file).unlink()
    (log_dir(home, LOG) / HEAD_FILE).unlink()
    assert _problem(home).startswith("removed: lake/meta/access_log/.chain-head.json is missing while the log holds 3")


def test_an_old_head_replayed_over_a_cut_log_is_caught_by_the_anchor_a_run_published(home):
    old_head = (log_dir(home, LOG) / HEAD_FILE).read_text()        # genuine, keyed, at entry 5
    for n in range(5, 8):
        _query(home, n)

    def cut_back_to_five() -> None:
        for entry in entries(home, LOG)[5:]:
            (home.home / entry.file).unlink()
        (log_dir(home, LOG) / HEAD_FILE).write_text(old_head)

    cut_back_to_five()
    assert _problem(home) is None           # nothing published after entry 5: the cut is not seen
    for n in range(8, 11):
        _query(home, n)                     # entries 6 to 8; a run then publishes the head
    home.alerts_log.parent.mkdir(parents=True, exist_ok=True)
    home.alerts_log.write_text(json.dumps({"kind": ANCHOR_ALERT, "at": "2026-01-02T00:00:00",
                                           "see": anchor_commands(current_anchors(home))}) + "\n")
    cut_back_to_five()
    assert _problem(home).startswith("rewritten: the anchor published in alerts/alerts.jsonl line 1 "
                                     "(2026-01-02T00:00:00) says entry 8 has hash")


def test_an_entry_replayed_in_another_log_is_named(home):
    """A genuine access-log entry copied into the ingest log: its hash is keyed to its log's name."""
    victim = entries(home, LOG)[0]
    target = log_dir(home, "meta.ingest_log") / "2026-01-01" / "replayed.parquet"
    target.parent.mkdir(parents=True)
    shutil.copy(home.home / victim.file, target)
    report = {r.log: r for r in verify_trail(home)}["meta.ingest_log"]
    assert report.problem.startswith("changed: entry 1 (lake/meta/ingest_log/2026-01-01/replayed.parquet row 1) ")


def test_an_unkeyed_trail_is_refused_then_rekeyed(tmp_path):
    settings = Settings(tmp_path / "home").ensure()
    for n in range(3):
        _query(settings, n)
    (settings.secrets_dir / AUDIT_KEY_FILE).unlink()       # as a trail from before keys: plain SHA-256
    for entry in entries(settings, LOG):
        row = dict(entry.row)
        row["prev_hash"] = entries(settings, LOG)[entry.seq - 2].entry_hash if entry.seq > 1 else "0" * 64
        row["entry_hash"] = entry_hash(LOG, entry.seq, row["prev_hash"], row)
        _write_row(settings, entry, row)
    last = entries(settings, LOG)[-1]
    (log_dir(settings, LOG) / HEAD_FILE).write_text(json.dumps({"log": LOG, "entry_seq": 3, "entry_hash": last.entry_hash}))
    with pytest.raises(UnkeyedTrail, match="chained without a key .* run `shuku audit rekey`"):
        verify(settings)
    _query(settings, 3)                                      # queries go on meanwhile, unkeyed
    assert not (settings.secrets_dir / AUDIT_KEY_FILE).exists()
    result = CliRunner().invoke(main, ["audit", "verify"], env={"SHUKU_HOME": str(settings.home)})
    assert result.exit_code == 1 and "shuku audit rekey" in result.output
    assert all(r.ok for r in verify(settings, legacy=True))
    assert rekey(settings)[LOG] == 4
    assert all(r.ok for r in verify(settings))
    with pytest.raises(ValueError, match="keyed already"):
        rekey(settings)
    _query(settings, 4)
    report = {r.log: r for r in verify(settings)}[LOG]
    assert report.ok and report.entries == 5


def test_a_tampered_unkeyed_trail_is_not_keyed(tmp_path):
    settings = Settings(tmp_path / "home").ensure()
    for n in range(3):
        _query(settings, n)
    (settings.secrets_dir / AUDIT_KEY_FILE).unlink()
    result = CliRunner().invoke(main, ["audit", "rekey"], env={"SHUKU_HOME": str(settings.home)})
    assert result.exit_code == 1 and "the old trail does not verify, so it is not keyed" in result.output
    assert not (settings.secrets_dir / AUDIT_KEY_FILE).exists()
