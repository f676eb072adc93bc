"""The `shuku` command as a librarian uses it: generate, run, status, sql, parse — on the
persistent Dagster instance of the home folder, with exit codes scripts can trust."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from tests.privacy import find_personal_data
from tests.published import copied_home, published_home
from warehouse.settings import Settings


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home folder with two generated days, loaded once through `shuku run`."""
    home = tmp_path_factory.mktemp("cli") / "home"
    patch = pytest.MonkeyPatch()
    patch.setenv("SHUKU_HOME", str(home))
    patch.setenv("DAGSTER_HOME", str(home / "dagster"))
    runner = CliRunner()
    generated = runner.invoke(main, ["generate", "--scale", "tiny", "--days", "2", "--seed", "3"])
    assert generated.exit_code == 0, generated.output
    ran = runner.invoke(main, ["run"])
    assert ran.exit_code == 0, ran.output
    yield home
    patch.undo()


@pytest.fixture
def cli(home, monkeypatch):
    monkeypatch.setenv("SHUKU_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return CliRunner()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, library) -> Path:
    """A copy of the session's published tiny home, for the commands that need no run of their own."""
    return copied_home(published_home(tmp_path_factory, library), tmp_path_factory.mktemp("cli-shared") / "home").home


@pytest.fixture
def cli_shared(shared, monkeypatch):
    monkeypatch.setenv("SHUKU_HOME", str(shared))
    return CliRunner()


# The commands' own run: `shuku generate` and `shuku run` into a home of their own (about 45 s).
@pytest.mark.slow
def test_status_lists_runs_and_tables(cli):
    result = cli.invoke(main, ["status"])
    assert result.exit_code == 0, result.output
    assert "SUCCESS" in result.output
    assert "staging.gate_event" in result.output and "marts.space_utilisation" in result.output


def test_sql_json_output(cli_shared):
    result = cli_shared.invoke(main, ["sql", "select count(*) as n from staging.gate_event", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip())["n"] > 0


def test_sql_error_is_a_clear_failure(cli_shared):
    result = cli_shared.invoke(main, ["sql", "select * from staging.no_such_table"])
    assert result.exit_code == 1
    assert "query failed" in result.output and "no_such_table" in result.output


def test_parse_prints_pseudonymised_rows_and_reject_summary(cli_shared, shared):
    files = sorted((shared / "landing" / "circulation").glob("statistics_*"))
    result = cli_shared.invoke(main, ["parse", "circulation", str(files[0])])
    assert result.exit_code in (0, 1), result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{\"event_at")]
    assert rows and all("card_number" not in r for r in rows)
    assert any(r["patron_pid"] for r in rows)
    assert '"rows_read"' in result.stderr
    summary = json.loads(result.stderr.splitlines()[0])
    assert summary["rows_read"] == summary["rows_parsed"] + summary["rejected"]
    assert result.exit_code == (1 if summary["rejected"] else 0)


def test_parse_recognises_the_gate_format_and_refuses_a_foreign_file(cli_shared, shared, tmp_path):
    counter_file = sorted((shared / "landing" / "gates").glob("counter_*"))[0]
    result = cli_shared.invoke(main, ["parse", "gates", str(counter_file)])
    assert result.exit_code in (0, 1)
    assert "gate-counter" in result.stderr or "counter" in result.stderr
    foreign = tmp_path / "notes.csv"
    foreign.write_text("a,b,c\n1,2,3\n")
    refused = cli_shared.invoke(main, ["parse", "gates", str(foreign)])
    assert refused.exit_code == 2
    assert "notes.csv" in refused.stderr


def test_backwards_range_is_a_usage_error(cli_shared):
    result = cli_shared.invoke(main, ["run", "--from", "2025-09-05", "--to", "2025-09-01"])
    assert result.exit_code == 2
    assert "before" in result.output


@pytest.mark.slow
def test_unreadable_file_fails_the_run_and_keeps_the_stored_partition(cli, home):
    settings = Settings(home)
    stored = home / "lake" / "staging" / "circulation_event" / "event_date=2025-09-02" / "part-0.parquet"
    before = stored.read_bytes()
    damaged = home / "landing" / "circulation" / "statistics_2025-09-02.csv.gz"
    original = sorted((home / "landing" / "circulation").glob("statistics_2025-09-02*"))
    damaged.write_bytes(b"\x1f\x8b\x08\x00broken")
    try:
        result = cli.invoke(main, ["run", "--select", "circulation", "--no-models"])
        assert result.exit_code == 1
        assert "statistics_2025-09-02.csv.gz" in result.output and "damaged" in result.output
        assert stored.read_bytes() == before
    finally:
        if damaged not in original:
            damaged.unlink()
    assert settings.home.exists()


@pytest.mark.slow  # the same scan as test_pipeline's, over a second home: 15 s
def test_nothing_personal_under_home_outside_landing_and_restricted(cli, home):
    """Dagster's own SQLite event log included."""
    assert (home / "dagster" / "history").exists() or any((home / "dagster").rglob("*.db"))
    assert find_personal_data(Settings(home)) == []
