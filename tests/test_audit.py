"""The hash-chained audit trail: a clean pipeline run verifies; an attacker's edit, removal or
insertion straight in the Parquet files is caught and named; a full rewrite is caught by an anchor."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from tests.published import published_home
from warehouse.audit import CHAINED, GENESIS, HEAD_FILE, entries, entry_hash, head_mac, log_dir, verify
from warehouse.audit_key import AUDIT_KEY_FILE, audit_key
from warehouse.guard import guard
from warehouse.guarded import QueryRefused, log_access, run_guarded
from warehouse.privacy.consent import set_consent
from warehouse.privacy.erasure import ErasureHooks, erase
from warehouse.settings import Settings


@pytest.fixture(scope="module")
def built(tmp_path_factory, library) -> Settings:
    settings = published_home(tmp_path_factory, library)
    run_guarded(settings, "SELECT count(*) FROM marts.space_utilisation", "public", "audit-test")
    with pytest.raises(QueryRefused):
        run_guarded(settings, "SELECT patron_pid FROM core.fact_loan", "analyst", "audit-test")
    run_guarded(settings, "SELECT zone_code FROM marts.space_utilisation LIMIT 2", "analyst", "audit-test")
    return settings


@pytest.fixture
def copy(built, tmp_path) -> Settings:
    """The built home's chained logs, copied for an attacker to edit."""
    settings = Settings(tmp_path / "attacked").ensure()
    for table in CHAINED:
        if log_dir(built, table).exists():
            shutil.copytree(log_dir(built, table), log_dir(settings, table))
    shutil.copy(built.secrets_dir / AUDIT_KEY_FILE, settings.secrets_dir / AUDIT_KEY_FILE)
    return settings


def _report(settings: Settings, log: str, anchors=()):
    return {r.log: r for r in verify(settings, list(anchors))}[log]


def _rewrite(settings: Settings, entry, change) -> None:
    """Rewrite the file holding ``entry`` with ``change(frame, row_index)`` applied, as an attacker would."""
    path = settings.home / entry.file
    frame = pl.read_parquet(path, hive_partitioning=False)
    change(frame, entry.line - 1).write_parquet(path)


def test_a_clean_pipeline_run_verifies(built):
    reports = verify(built)
    assert [r.log for r in reports] == list(CHAINED)
    assert all(r.ok for r in reports), [r.problem for r in reports]
    by_log = {r.log: r for r in reports}
    ingest = entries(built, "meta.ingest_log")
    assert by_log["meta.ingest_log"].entries == len(ingest) > 10
    assert [e.seq for e in ingest] == list(range(1, len(ingest) + 1))
    assert by_log["meta.consent"].entries > 0 and by_log["meta.access_log"].entries >= 3
    for r in reports:
        held = entries(built, r.log)
        assert r.head_hash == (held[-1].entry_hash if held else GENESIS)
        assert r.anchor == f"{r.log}:{r.head_seq}:{r.head_hash}"


def test_every_entry_links_to_the_one_before(built):
    key = audit_key(built, create=False)
    held = entries(built, "meta.access_log")
    assert held[0].prev_hash == GENESIS
    for before, after in zip(held, held[1:]):
        assert after.prev_hash == before.entry_hash
        assert after.entry_hash == entry_hash("meta.access_log", after.seq, after.prev_hash, after.row, key)
    # The hash covers the content: the same entry with one value changed hashes differently.
    last = held[-1]
    assert entry_hash("meta.access_log", last.seq, last.prev_hash, {**last.row, "rows_returned": 999}, key) != last.entry_hash


def test_an_edited_entry_is_named(copy):
    victim = entries(copy, "meta.ingest_log")[4]
    _rewrite(copy, victim, lambda f, i: f.with_columns(
        pl.when(pl.int_range(f.height) == i).then(pl.col("rows_loaded") + 1).otherwise(pl.col("rows_loaded")).alias("rows_loaded")))
    report = _report(copy, "meta.ingest_log")
    assert not report.ok
    assert report.problem.startswith(f"changed: entry {victim.seq} ") and victim.file in report.problem
    assert all(r.ok for r in verify(copy) if r.log != "meta.ingest_log")


def test_an_edit_that_also_recomputes_its_own_hash_breaks_the_next_link(copy):
    """Even by someone holding the key: the next entry names the old hash."""
    held = entries(copy, "meta.access_log")
    victim = held[1]
    row = {**victim.row, "outcome": "allowed", "rows_returned": 0, "reason": "nothing to see"}
    forged = entry_hash("meta.access_log", victim.seq, victim.prev_hash, row, audit_key(copy, create=False))
    _rewrite(copy, victim, lambda f, i: f.with_columns(pl.lit("nothing to see").alias("reason"), pl.lit("allowed").alias("outcome"),
                                                       pl.lit(0, pl.Int64).alias("rows_returned"), pl.lit(forged).alias("entry_hash")))
    report = _report(copy, "meta.access_log")
    assert report.problem.startswith(f"inserted or replaced: entry {held[2].seq} "), report.problem


def test_a_removed_entry_is_named(copy):
    held = entries(copy, "meta.access_log")
    victim = held[1]
    assert victim.file != held[0].file != held[2].file     # one file per query
    (copy.home / victim.file).unlink()
    report = _report(copy, "meta.access_log")
    assert report.problem.startswith(f"removed: entry {victim.seq} is missing"), report.problem
    assert held[2].file in report.problem


def test_a_removed_last_entry_shows_against_the_head(copy):
    held = entries(copy, "meta.access_log")
    (copy.home / held[-1].file).unlink()
    report = _report(copy, "meta.access_log")
    assert report.problem.startswith(f"removed: the log ends at entry {held[-2].seq} but was appended up to entry {held[-1].seq}")
    # Without the head file too: its absence is named.
    (log_dir(copy, "meta.access_log") / HEAD_FILE).unlink()
    assert _report(copy, "meta.access_log").problem.startswith("removed: lake/meta/access_log/.chain-head.json is missing")


def test_an_inserted_entry_is_named(copy):
    held = entries(copy, "meta.access_log")
    target = held[1]
    # A copy of a real entry, changed, dropped in as a new file claiming the same position.
    forged = pl.read_parquet(copy.home / target.file).with_columns(pl.lit("auditor").alias("role"))
    intruder = Path(copy.home / target.file).with_name("00000000-forged.parquet")
    forged.write_parquet(intruder)
    report = _report(copy, "meta.access_log")
    assert report.problem.startswith("inserted: ") and str(intruder.relative_to(copy.home)) in report.problem, report.problem
    intruder.unlink()
    # A row written without the chain columns, as a naive writer would.
    plain = forged.drop("entry_seq", "prev_hash", "entry_hash")
    plain.write_parquet(intruder)
    report = _report(copy, "meta.access_log")
    assert report.problem.startswith("inserted: ") and "carries no chain columns" in report.problem


def test_a_rewritten_chain_is_caught_by_its_anchor(copy):
    """Even by someone holding the key, who can rewrite every hash and the head."""
    key = audit_key(copy, create=False)
    anchor = _report(copy, "meta.consent").anchor
    held = entries(copy, "meta.consent")
    # The attacker flips one reader's choice and recomputes every hash after it, head file included.
    files: dict[str, list] = {}
    prev = held[0].entry_hash
    for entry in held[1:]:
        row = dict(entry.row)
        if entry is held[1]:
            row["profiling"] = not row["profiling"]
        row["prev_hash"] = prev
        row["entry_hash"] = prev = entry_hash("meta.consent", entry.seq, prev, row, key)
        files.setdefault(entry.file, []).append((entry.line, row))
    for file, rows in files.items():
        frame = pl.read_parquet(copy.home / file)
        records = frame.to_dicts()
        for line, row in rows:
            records[line - 1] = row
        pl.DataFrame(records, schema=frame.schema).write_parquet(copy.home / file)
    (log_dir(copy, "meta.consent") / HEAD_FILE).write_text(json.dumps(
        {"entry_seq": held[-1].seq, "entry_hash": prev, "head_mac": head_mac(key, "meta.consent", held[-1].seq, prev)}))
    assert _report(copy, "meta.consent").ok                 # the chain alone cannot tell
    report = _report(copy, "meta.consent", [anchor])
    assert not report.ok and report.problem.startswith(f"rewritten: the published anchor says entry {held[-1].seq}")


def test_concurrent_appends_queue_on_the_lock(tmp_path):
    settings = Settings(tmp_path / "home").ensure()
    decision = guard("SELECT 1", "analyst")

    def client(n: int) -> None:
        for i in range(10):
            log_access(settings, role="analyst", user=f"client-{n}", sql=f"SELECT {i}", decision=decision,
                       outcome="allowed", rows_returned=1)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = _report(settings, "meta.access_log")
    assert report.ok and report.entries == report.head_seq == 80


def test_cli_verify_and_anchor(copy):
    runner = CliRunner()
    env = {"SHUKU_HOME": str(copy.home)}
    anchored = runner.invoke(main, ["audit", "anchor"], env=env)
    assert anchored.exit_code == 0, anchored.output
    heads = anchored.output.split()
    assert [h.split(":")[0] for h in heads] == list(CHAINED)
    ok = runner.invoke(main, ["audit", "verify", *[f"--anchor={h}" for h in heads]], env=env)
    assert ok.exit_code == 0 and "TAMPERED" not in ok.output, ok.output
    (copy.home / entries(copy, "meta.ingest_log")[0].file).unlink()
    broken = runner.invoke(main, ["audit", "verify", "--format", "json"], env=env)
    assert broken.exit_code == 1
    data = json.loads(broken.output[:broken.output.rindex("]") + 1])
    assert [d["log"] for d in data if not d["ok"]] == ["meta.ingest_log"]
    assert runner.invoke(main, ["audit", "anchor"], env=env).exit_code == 1
    bad = runner.invoke(main, ["audit", "verify", "--anchor", "meta.access_log:x"], env=env)
    assert bad.exit_code == 2 and "LOG:ENTRY:HASH" in bad.output


def test_an_erasure_keeps_the_chains_verifiable_and_lists_what_it_took(tmp_path):
    """Consent entries removed and a query naming the reader redacted: accepted, counted, nothing else."""
    settings = Settings(tmp_path / "home").ensure()
    reader, other = "a" * 64, "b" * 64
    set_consent(settings, reader, 1, profiling=True, recommendations=True, changed_by="officer")
    set_consent(settings, other, 1, profiling=False, recommendations=False, changed_by="officer")
    set_consent(settings, reader, 1, profiling=False, recommendations=None, changed_by="officer")
    log_access(settings, role="analyst", user="a", sql=f"SELECT 1 WHERE '{reader}' <> ''", decision=guard("SELECT 1", "analyst"),
               outcome="allowed", rows_returned=1)
    hooks = ErasureHooks(landing_files=lambda s: [], rewrite_landing=lambda p, d, f: (d, 0),
                         rebuild_models=lambda s, changed: [])
    row = erase(settings, hooks, pid=reader, requested_by="officer")
    # The query named the reader's pseudonym: the access log never kept it, so there is nothing to redact there.
    assert len(row["log_entries_erased"]) == 2 and entries(settings, "meta.access_log")[0].row["sql_text"] == \
        "SELECT 1 WHERE '<pseudonym>' <> ''"
    reports = {r.log: r for r in verify(settings)}
    assert all(r.ok for r in reports.values()), [r.problem for r in reports.values()]
    assert reports["meta.consent"].erased == 2 and reports["meta.access_log"].erased == 0
    assert reports["meta.consent"].head_seq == 4        # three changes and the erasure's tombstone
    # What the erasure did not list is still caught: the other reader's entry edited.
    kept = next(e for e in entries(settings, "meta.consent") if e.row["patron_pid"] == other)
    _rewrite(settings, kept, lambda f, i: f.with_columns(pl.lit(True).alias("profiling")))
    assert _report(settings, "meta.consent").problem.startswith(f"changed: entry {kept.seq} ")


def test_the_auditor_reads_the_live_access_log(built):
    """Queries made since the last publish are in the auditor's answer, not only in the lake."""
    from warehouse.guarded import open_role_database
    con = open_role_database(built, "auditor")
    try:
        published = con.execute("SELECT count(*) FROM meta.access_log").fetchone()[0]
    finally:
        con.close()
    stored = len(entries(built, "meta.access_log"))
    assert stored >= published + 3
    live = run_guarded(built, "SELECT count(*) AS n, max(l.entry_seq) AS last FROM meta.access_log AS l "
                              "WHERE l.user_name = 'audit-test'", "auditor", "auditor-1")
    assert live.rows == [(3, max(e.seq for e in entries(built, "meta.access_log") if e.row["user_name"] == "audit-test"))]
    joined = run_guarded(built, "SELECT count(*) FROM meta.access_log JOIN meta.access_log AS b USING (entry_seq)",
                         "auditor", "auditor-1")
    assert joined.rows == [(stored + 1,)]      # the first auditor query is logged by now
