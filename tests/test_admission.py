"""Write, audit, publish without Dagster (fast): staged partitions are invisible until published,
the audit checks the staged rows, and a mostly unreadable re-delivery never replaces a stored day."""

import polars as pl
import pytest

from assets.feeds import feed_named
from assets.ingest import ingest_partition
from quality.checks import audit
from schemas.model import conform, contract_for
from warehouse.lake.partitions import discard_partition, publish_partition, stage_partition, write_partition
from warehouse.lake.paths import checksum_record_path
from warehouse.lake.views import compute_connection
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

DAY = "2025-09-02"
HEADER = "time,gate,direction,card,result"
GOOD = [f"{DAY} 08:0{m}:00,MAIN-G1,IN,20231045{m:02d},PASS" for m in range(6)]


def _gate_events(n: int) -> pl.DataFrame:
    contract = contract_for("staging.gate_event")
    frame = pl.DataFrame({"event_at": pl.Series([f"{DAY} 08:00:{s:02d}" for s in range(n)], dtype=pl.Utf8),
                          "gate_code": ["MAIN-G1"] * n,
                          "direction": ["IN"] * n, "result": ["PASS"] * n, "patron_pid": pl.Series([None] * n, dtype=pl.Utf8),
                          "pid_key_version": pl.Series([1] * n, dtype=pl.Int64), "source_file": ["gates/t.csv"] * n,
                          "source_line": pl.Series(list(range(2, n + 2)), dtype=pl.Int64)},
                         schema_overrides={"gate_code": pl.Utf8, "direction": pl.Utf8, "result": pl.Utf8,
                                           "source_file": pl.Utf8})
    frame = frame.with_columns(pl.col("event_at").str.to_datetime(), pl.col("event_at").str.to_datetime().dt.date()
                               .alias("event_date"))
    return conform(frame, contract)


def _rows(settings: Settings) -> int:
    con = compute_connection(settings, ["staging.gate_event"])
    try:
        return con.execute("SELECT count(*) FROM staging.gate_event").fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow      # the process's first Great Expectations validation takes ~10 s
def test_a_staged_partition_is_unseen_until_published_and_audited_on_its_own_rows():
    settings = Settings.from_env().ensure()
    contract = contract_for("staging.gate_event")
    stored = write_partition(settings, contract, DAY, _gate_events(5))
    before, record = stored.read_bytes(), checksum_record_path(settings, stored).read_bytes()

    empty = stage_partition(settings, contract, DAY, _gate_events(0))
    assert _rows(settings) == 5                                   # readers still see the stored day
    outcomes = audit(contract, settings, {DAY: empty.staged}, run_id="r1")
    assert outcomes and {o.severity for o in outcomes} == {"error"}            # the blocking checks only
    assert [(f.check_name, f.observed_value) for f in outcomes if not f.success] == [
        ("row_count", f"1 partition(s), fewest 0 rows (event_date={DAY})")]
    discard_partition(empty)
    assert stored.read_bytes() == before and checksum_record_path(settings, stored).read_bytes() == record
    assert sorted(p.name for p in stored.parent.iterdir()) == ["part-0.parquet"]

    bigger = stage_partition(settings, contract, DAY, _gate_events(7))
    assert all(o.success for o in audit(contract, settings, {DAY: bigger.staged}, run_id="r2"))
    publish_partition(settings, bigger)
    assert _rows(settings) == 7 and checksum_record_path(settings, stored).read_bytes() != record


def test_a_refused_new_partition_leaves_no_folder():
    settings = Settings.from_env().ensure()
    pending = stage_partition(settings, contract_for("staging.gate_event"), DAY, _gate_events(0))
    discard_partition(pending)
    assert not pending.path.parent.exists()


def test_a_mostly_unreadable_redelivery_keeps_the_stored_day(library):
    settings = Settings.from_env().ensure()
    feed, pseudonymiser = feed_named("turnstile"), Pseudonymiser.load(settings.secrets_dir)
    path = settings.landing / "gates" / f"turnstile_{DAY}.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join([HEADER, *GOOD]) + "\n", encoding="utf-8")
    loaded = ingest_partition(feed, DAY, settings, library, pseudonymiser, "run-1")
    assert loaded.written and not loaded.refused and loaded.rows_loaded == {"gate_event": 6}
    stored = settings.lake / "staging" / "gate_event" / f"event_date={DAY}" / "part-0.parquet"
    before = stored.read_bytes()

    # Four of six lines cut to three fields: more than half (the default limit) unreadable.
    path.write_text("\n".join([HEADER, *(line.rsplit(",", 2)[0] for line in GOOD[:4]), *GOOD[4:]]) + "\n",
                    encoding="utf-8")
    refused = ingest_partition(feed, DAY, settings, library, pseudonymiser, "run-2")
    assert not refused.written and refused.refused.startswith(
        f"4 of 6 lines of landing/gates/turnstile_{DAY}.csv are malformed: is this a turnstile export?")
    assert "2023104500" not in refused.refused
    assert stored.read_bytes() == before
    log = pl.read_parquet(settings.lake / "meta" / "ingest_log" / "turnstile" / DAY / "run-run-2.parquet")
    assert log.select("file_status", "rows_read", "rows_loaded", "rows_quarantined").rows() == [("rejected", 6, 0, 4)]
    quarantine = pl.read_parquet(settings.quarantine / "gates" / "staging_table=gate_event" / f"partition_key={DAY}"
                                 / "part-0.parquet", hive_partitioning=False)
    assert quarantine.get_column("run_id").to_list() == ["run-2"] * 4

    # Three of six: not more than half, so loaded (the limit is a share, not a count).
    path.write_text("\n".join([HEADER, *(line.rsplit(",", 2)[0] for line in GOOD[:3]), *GOOD[3:]]) + "\n",
                    encoding="utf-8")
    accepted = ingest_partition(feed, DAY, settings, library, pseudonymiser, "run-3")
    assert accepted.written and accepted.rows_loaded == {"gate_event": 3} and stored.read_bytes() != before
