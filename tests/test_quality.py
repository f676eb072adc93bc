"""Quality checks on a generated library: every check passes on a clean run and is recorded,
damaged partitions fail their checks, blocking checks stop the marts, freshness, and long tables
validated in chunks with the same outcome."""

import csv
import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from assets.feeds import FEEDS
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.jobs import MODELS_JOB
from pipelines.runner import Stage, run_stage
from quality.checks import check_specs, evaluate
from quality.freshness import is_stale
from quality.plan import planned_checks
from quality.suites import build_suite, contract_expectations
from schemas.model import contract_for, load_contract
from tests.published import copied_home, shared_home
from warehouse.lake.partitions import write_partition
from warehouse.lake.views import compute_connection
from warehouse.library import load_library
from warehouse.settings import Settings


@pytest.fixture(scope="module")
def built(tmp_path_factory, library):
    """The session's tiny home (tests/published.py), read as it is: a test that writes copies it."""
    home = shared_home(tmp_path_factory, library)
    return home.settings, home.instance, home.results


def _copy_home(settings: Settings, tmp_path, monkeypatch) -> Settings:
    copy = copied_home(settings, tmp_path / "copy")
    monkeypatch.setenv("SHUKU_HOME", str(copy.home))
    return copy


def test_every_check_passes_on_a_clean_run_and_is_recorded(built):
    settings, instance, results = built
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    evaluations = [e.dagster_event.event_specific_data for r in results
                   for e in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    # Two warnings, never blocking, may fail on generated data: freshness always (the days are in
    # 2025, today is later), out_after_in when the generator damaged an IN line whose reader's OUT
    # then stands alone (it is quarantined).
    failed = {e.check_name for e in evaluations if not e.passed}
    assert evaluations and "freshness" in failed and failed <= {"freshness", "out_after_in"}
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in evaluations if not e.passed)
    con = compute_connection(settings)
    rows = con.execute("SELECT table_name, check_name, success, partition_key, unexpected_sample "
                       "FROM meta.quality_results").fetchall()
    con.close()
    tables = {table for table, *_ in rows}
    assert {f"staging.{t}" for f in FEEDS for t in f.tables} | {"core.fact_loan", "marts.space_utilisation"} <= tables
    assert len(rows) == len(evaluations) == sum(len(planned_checks(contract_for(t))) for t in tables)
    assert all(success for _, check, success, _, _ in rows if check not in ("freshness", "out_after_in"))
    assert ("staging.gate_event", "in_set__direction", True, "2025-09-01..2025-09-02", "[]") in rows
    assert ("staging.gate_event", "row_count", True, "2025-09-01..2025-09-02", "[]") in rows
    env = {"SHUKU_HOME": str(settings.home)}
    assert CliRunner().invoke(main, ["quality"], env=env).exit_code == 0
    status = CliRunner().invoke(main, ["status"], env=env, terminal_width=250)
    assert status.exit_code == 0, status.output          # warnings are shown, not failed on
    assert "failing checks" in status.output and "freshness" in status.output


RECONCILIATIONS = {("core.fact_loan", "loans_match_issue_events"),
                   ("staging.counter_usage", "counter_pr_matches_dr"),
                   ("core.fact_counter_usage", "counter_pr_matches_dr"),
                   ("staging.counter_usage", "counter_titles_within_items"),
                   ("core.fact_counter_usage", "counter_titles_within_items"),
                   ("core.fact_gate_event", "gate_balance_within_zone"),
                   ("marts.space_utilisation", "utilisation_matches_passages")}


def test_the_reconciliations_hold_on_the_generated_library(built):
    """Loans and issue events, PR and DR, gate passages and the zones, the mart and the gates agree on a
    generated library (tests/test_quality_blocking.py breaks each one in a real run)."""
    settings, _, results = built
    con = compute_connection(settings)
    rows = con.execute("SELECT table_name, check_name, success, severity, unexpected_count FROM meta.quality_results "
                       "WHERE check_name IN (SELECT unnest(?))", [sorted({c for _, c in RECONCILIATIONS})]).fetchall()
    [(pairs,)] = con.execute("SELECT count(DISTINCT platform) FROM staging.counter_usage "
                             "WHERE report_id = 'DR'").fetchall()
    con.close()
    assert {(t, c) for t, c, *_ in rows} == RECONCILIATIONS
    assert all((success, severity, count) == (True, "error", 0) for _, _, success, severity, count in rows), rows
    assert pairs == 5      # every platform sent a PR and a DR: the COUNTER rule had something to compare


def test_a_bad_direction_in_a_staging_partition_fails_its_check(built, tmp_path, monkeypatch):
    settings = _copy_home(built[0], tmp_path, monkeypatch)
    contract = contract_for("staging.gate_event")
    con = compute_connection(settings)
    frame = con.sql("SELECT * FROM staging.gate_event WHERE event_date = DATE '2025-09-02'").pl()
    con.close()
    write_partition(settings, contract, "2025-09-02",
                    frame.with_columns(pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("SIDEWAYS"))
                                       .otherwise(pl.col("direction")).alias("direction")))
    results = {r.check_name: r for r in evaluate(contract, settings, run_id="manual", partition_keys=["2025-09-02"],
                                                 now=dt.datetime(2025, 9, 3, 12))}
    failed = results["in_set__direction"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["unexpected_count"].value == 3
    assert failed.metadata["partitions"].value == "2025-09-02"
    assert all("direction=SIDEWAYS" in s and ".csv" in s for s in failed.metadata["sample"].value)
    # Only the direction check blocks; out_after_in may warn on generated data (see the clean-run test).
    assert [name for name, r in results.items()
            if not r.passed and r.severity == dg.AssetCheckSeverity.ERROR] == ["in_set__direction"]


def test_a_card_number_in_staging_blocks_the_marts_and_shows_in_shuku_quality(built, tmp_path, monkeypatch):
    settings = _copy_home(built[0], tmp_path, monkeypatch)
    with next(settings.landing.glob("patrons/*.csv")).open(encoding="gb18030") as fh:
        card = next(csv.DictReader(fh))["cardnumber"]
    contract = contract_for("staging.gate_event")
    con = compute_connection(settings)
    frame = con.sql("SELECT * FROM staging.gate_event WHERE event_date = DATE '2025-09-01'").pl()
    con.close()
    write_partition(settings, contract, "2025-09-01", frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(pl.lit(card)).otherwise(pl.col("gate_code")).alias("gate_code")))

    instance = dg.DagsterInstance.ephemeral()
    result = run_stage(build_definitions(settings), instance, Stage("models", MODELS_JOB, [], None))
    assert not result.success
    assert "no_card_numbers" in result.error
    materialised = {e.dagster_event.asset_key.to_user_string()
                    for e in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
    assert "core/fact_gate_event" in materialised and "core/fact_loan" in materialised
    assert "marts/space_utilisation" not in materialised

    con = compute_connection(settings)
    failing = con.execute("SELECT check_name, unexpected_count, unexpected_sample FROM meta.quality_results "
                          "WHERE run_id = ? AND NOT success AND severity = 'error' ORDER BY check_name",
                          [result.run_id]).fetchall()
    con.close()
    assert [(name, count) for name, count, _ in failing] == [("gate_in_dim_gate", 2), ("no_card_numbers", 2)]
    assert all(card not in sample for _, _, sample in failing)

    shown = CliRunner().invoke(main, ["quality", "fact_gate_event"], env={"SHUKU_HOME": str(settings.home)})
    assert shown.exit_code == 1, shown.output
    assert "no_card_numbers" in shown.output and "core.fact_gate_event" in shown.output
    assert "lake/core/fact_gate_event" in shown.output and card not in shown.output
    env = {"SHUKU_HOME": str(settings.home)}
    assert CliRunner().invoke(main, ["quality", "staging.gate_event"], env=env).exit_code == 0

    status = CliRunner().invoke(main, ["status"], env=env)
    assert status.exit_code == 1, status.output
    assert "failing checks" in status.output and "no_card_numbers" in status.output
    assert "error-severity check(s) fail" in status.output and card not in status.output

    # The Data Docs site was rewritten by the run: the failing check is on the index and the table's page.
    index = settings.home / "quality" / "docs" / "index.html"
    page = index.read_text(encoding="utf-8")
    assert "no_card_numbers" in page and "core.fact_gate_event" in page and card not in page
    assert "<script" not in page and "http" not in page and "<link" not in page     # nothing fetched
    table_page = (index.parent / "core.fact_gate_event.html").read_text(encoding="utf-8")
    assert "no_card_numbers" in table_page and "FAIL (error)" in table_page and card not in table_page
    assert "pass" in (index.parent / "staging.gate_event.html").read_text(encoding="utf-8")
    index.unlink()
    docs = CliRunner().invoke(main, ["quality", "--docs"], env=env)
    assert docs.exit_code == 0 and docs.output.strip() == str(index)
    assert "no_card_numbers" in index.read_text(encoding="utf-8")    # rebuilt from meta.quality_results


def _contract_variant(tmp_path, table: str, old: str, new: str):
    """The contract of ``table`` with one piece of text replaced, loaded from a temporary file."""
    text = contract_for(table).path.read_text(encoding="utf-8")
    assert old in text
    layer, name = table.split(".")
    path = tmp_path / layer / f"{name}.odcs.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return load_contract(path)


def test_row_count_rules_follow_the_odcs_operators_and_severity(tmp_path):
    rule = next(e for e in contract_expectations(contract_for("staging.patron")) if e.kind == "row_count")
    assert (rule.expectation, rule.kwargs, rule.severity) == (
        "ExpectTableRowCountToBeBetween", {"min_value": 0, "strict_min": True}, "error")
    assert rule.description.startswith("The table holds more than 0 rows.")
    partitioned = {e.name: e for e in contract_expectations(contract_for("staging.search"))}["row_count"]
    assert partitioned.description.startswith("Every partition written")
    between = _contract_variant(tmp_path, "staging.gate_event", "mustBeGreaterThan: 0\n    severity: error",
                                "mustBeBetween: [10, 500000]\n    severity: warn")
    rule = next(e for e in contract_expectations(between) if e.kind == "row_count")
    assert (rule.kwargs, rule.severity) == ({"min_value": 10, "max_value": 500000}, "warn")
    assert {s.name: s for s in check_specs(between)}["row_count"].blocking is False
    assert build_suite(between).expectations[-1].max_value == 500000


def test_an_empty_staging_partition_fails_its_row_count_and_a_day_without_files_does_not(built, tmp_path, monkeypatch):
    settings = _copy_home(built[0], tmp_path, monkeypatch)
    contract = contract_for("staging.gate_event")
    write_partition(settings, contract, "2025-09-02", contract.empty_frame())   # files held no loadable row
    results = {r.check_name: r for r in evaluate(contract, settings, run_id="empty",
                                                 partition_keys=["2025-09-01", "2025-09-02", "2025-09-03"])}
    failed = results["row_count"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["unexpected_count"].value == 1           # 2025-09-03 had no files: not counted
    assert failed.metadata["sample"].value == ["event_date=2025-09-02: 0 rows"]
    assert "fewest 0 rows (event_date=2025-09-02)" in failed.metadata["observed"].value
    assert all(r.passed for name, r in results.items() if name not in ("row_count", "freshness"))
    nothing = {r.check_name: r for r in evaluate(contract, settings, run_id="none", partition_keys=["2025-09-05"])}
    assert nothing["row_count"].passed and nothing["row_count"].metadata["observed"].value == "no partition written"


def test_freshness_warns_against_the_library_clock(built, tmp_path, monkeypatch):
    settings = _copy_home(built[0], tmp_path, monkeypatch)
    contract = contract_for("staging.gate_event")
    spec = {s.name: s for s in check_specs(contract)}["freshness"]
    assert spec.blocking is False and "day(s) before the library's today" in spec.description
    local = ZoneInfo(load_library(settings.library_config).timezone)

    def freshness(now):
        return {r.check_name: r for r in evaluate(contract, settings, run_id="clock", partition_keys=["2025-09-02"],
                                                  now=now)}["freshness"]

    fresh = freshness(dt.datetime(2025, 9, 4, 23, 0, tzinfo=local))            # newest day 2025-09-02, SLA 2 days
    assert fresh.passed and "2 day(s) before 2025-09-04" in fresh.metadata["observed"].value
    # 16:30 UTC on 4 September is already the 5th in Shanghai: three days old, a warning.
    stale = freshness(dt.datetime(2025, 9, 4, 16, 30, tzinfo=dt.UTC))
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN
    assert stale.metadata["sample"].value == ["newest event_date=2025-09-02"]
    # A month partition covers its month: September's COUNTER data is 45 days old on 14 November.
    counter = contract_for("staging.counter_usage")
    assert not is_stale(counter, dt.date(2025, 9, 1), dt.date(2025, 11, 14))
    assert is_stale(counter, dt.date(2025, 9, 1), dt.date(2025, 11, 15))


def test_a_long_range_is_validated_a_few_partitions_at_a_time_with_the_same_outcome(built, tmp_path, monkeypatch):
    """A backfill's checks hand GX a few days at a time (memory stays flat as the range grows) and
    add the results up: the same counts, the same verdicts as one batch."""
    import quality.checks as checks

    settings = _copy_home(built[0], tmp_path, monkeypatch)
    contract = contract_for("staging.gate_event")
    con = compute_connection(settings)
    for day, bad in (("2025-09-01", 2), ("2025-09-02", 3)):
        frame = con.sql(f"SELECT * FROM staging.gate_event WHERE event_date = DATE '{day}'").pl()
        write_partition(settings, contract, day,
                        frame.with_columns(pl.when(pl.int_range(pl.len()) < bad).then(pl.lit("SIDEWAYS"))
                                           .otherwise(pl.col("direction")).alias("direction")))
    con.close()
    keys = ["2025-09-01", "2025-09-02"]

    def outcomes(chunk: int) -> dict:
        monkeypatch.setattr(checks, "CHUNK_PARTITIONS", chunk)
        return {o.check_name: o for o in checks.run_checks(contract, settings, run_id=f"chunk-{chunk}",
                                                            partition_keys=keys, now=dt.datetime(2025, 9, 3, 12))}

    assert checks.partition_chunks(contract, keys, checks.contract_expectations(contract)) == [keys]
    monkeypatch.setattr(checks, "CHUNK_PARTITIONS", 1)
    assert checks.partition_chunks(contract, keys, checks.contract_expectations(contract)) == [[k] for k in keys]
    # A uniqueness rule whose key lacks the partition column keeps the range in one batch.
    hold = contract_for("staging.hold")
    assert checks.partition_chunks(hold, keys, checks.contract_expectations(hold)) == [keys]

    chunked, whole = outcomes(1), outcomes(7)
    assert set(chunked) == set(whole)
    for name, outcome in whole.items():
        assert (chunked[name].success, chunked[name].unexpected_count, chunked[name].observed_value) == \
            (outcome.success, outcome.unexpected_count, outcome.observed_value), name
    direction = chunked["in_set__direction"]
    assert not direction.success and direction.unexpected_count == 5
    assert direction.observed_value == whole["in_set__direction"].observed_value
    assert 0 < len(direction.sample) <= 5 and all("direction=SIDEWAYS" in s for s in direction.sample)


def test_a_long_unpartitioned_table_is_streamed_in_row_chunks_with_the_same_outcome(built, tmp_path, monkeypatch):
    """A core fact (one file, growing with the year) reaches GX a chunk of rows at a time for its
    row-by-row rules, while its uniqueness rule still sees the whole key: a duplicate split across
    two chunks is found, and every verdict and count is the one of a single batch."""
    import quality.checks as checks
    from warehouse.lake.partitions import write_query_table

    settings = _copy_home(built[0], tmp_path, monkeypatch)
    contract = contract_for("core.fact_loan")
    con = compute_connection(settings)
    loans = con.sql("SELECT * FROM core.fact_loan").pl()
    n = loans.height
    assert n >= 60
    row = pl.int_range(pl.len())
    corrupt = loans.with_columns(
        pl.when(row == n - 1).then(pl.lit(loans["loan_id"][0])).otherwise(pl.col("loan_id")).alias("loan_id"),
        pl.when(row % 20 == 3).then(pl.lit(-1)).otherwise(pl.col("renew_count")).cast(loans["renew_count"].dtype)
        .alias("renew_count"))
    con.register("corrupt", corrupt.to_arrow())
    write_query_table(settings, contract, con, "SELECT * FROM corrupt")
    con.close()
    negative = corrupt.filter(pl.col("renew_count") < 0).height

    def outcomes(chunk_rows: int) -> dict:
        monkeypatch.setattr(checks, "CHUNK_ROWS", chunk_rows)
        return {o.check_name: o for o in checks.run_checks(contract, settings, run_id=f"rows-{chunk_rows}",
                                                            partition_keys=None)}

    monkeypatch.setattr(checks, "CHUNK_ROWS", n // 3)
    probe = checks._connection(settings, [contract.qualified_name])
    try:
        batches = list(checks._batches(probe, contract, contract_expectations(contract), None, ["loan_id"]))
        assert len(batches) >= 4   # three or four row chunks, then the key alone
        assert all(len(frame) <= n // 3 for frame, _, only in batches if "unique__loan_id" not in only)
        assert [len(frame) for frame, _, only in batches if "unique__loan_id" in only] == [n]
    finally:
        checks._close(probe)
    chunked, whole = outcomes(n // 3), outcomes(10 * n)
    assert list(chunked) == list(whole)
    for name, outcome in whole.items():
        assert (chunked[name].success, chunked[name].unexpected_count, chunked[name].observed_value) == \
            (outcome.success, outcome.unexpected_count, outcome.observed_value), name
    assert not chunked["unique__loan_id"].success and chunked["unique__loan_id"].unexpected_count == 2
    assert not chunked["between__renew_count"].success and chunked["between__renew_count"].unexpected_count == negative
    assert chunked["not_null__loan_id"].success and chunked["not_null__loan_id"].observed_value == f"0 of {n:,} rows"
