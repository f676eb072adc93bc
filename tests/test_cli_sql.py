"""`shuku sql` and `shuku shell` as an analyst meets them: numbers rounded for reading in the table
(whole in csv and json), a session answering query after query, and the data dictionary written
with the publish and named by `shuku status`."""

from __future__ import annotations

import decimal
import json

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.cli_sql import shown
from schemas.model import load_contracts
from tests.published import published_home
from warehouse.data_dictionary import dictionary_path, may_show

BIG = "SELECT 800000 / 3.0 AS big, 2 / 3.0 AS small, 1234567 AS whole, NULL AS nothing, 'x' AS word"


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    return published_home(tmp_path_factory, library)


@pytest.fixture
def runner(home, monkeypatch):
    monkeypatch.setenv("SHUKU_HOME", str(home.home))
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_display_rounding():
    assert shown(266666.6666666667) == "266,666.67"
    assert shown(decimal.Decimal("1234.5678")) == "1,234.57"
    assert shown(0.0912345) == "0.09123" and shown(0.0) == "0.00"
    assert shown(2025) == "2025" and shown(None) == "" and shown(True) == "True"
    assert shown(float("nan")) == "nan"


def test_table_rounds_and_csv_json_keep_full_precision(runner):
    table = runner.invoke(main, ["sql", "--role", "analyst", BIG])
    assert table.exit_code == 0, table.output
    assert "266,666.67" in table.stdout and "0.6667" in table.stdout and "1234567" in table.stdout
    assert "266666.666" not in table.stdout
    csv = runner.invoke(main, ["sql", "--role", "analyst", "--format", "csv", BIG])
    assert csv.stdout.splitlines()[1].startswith("266666.66666")
    row = json.loads(runner.invoke(main, ["sql", "--role", "analyst", "--format", "json", BIG]).stdout)
    assert row["big"] == pytest.approx(800000 / 3, rel=1e-12) and row["whole"] == 1234567


def test_shell_answers_each_query_and_goes_on_after_a_refusal(runner):
    queries = "SHOW TABLES\nSELECT * FROM marts.utilization\nSELECT count(*) AS n FROM \\\nmarts.key_figures\n"
    result = runner.invoke(main, ["shell", "--role", "public", "--format", "csv"], input=queries)
    assert result.exit_code == 1                     # one query was refused: said, and the rest answered
    assert "schema,name,description" in result.stdout and "\nn\n" in result.stdout
    assert "Did you mean marts.space_utilisation" in result.stderr
    ok = runner.invoke(main, ["shell", "--role", "public", "--format", "csv"], input="SELECT 1 AS one\n.quit\nSELECT 2\n")
    assert ok.exit_code == 0 and ok.stdout == "one\n1\n"


def test_the_dictionary_is_written_with_the_publish(home, runner):
    page, md = dictionary_path(home), dictionary_path(home).with_suffix(".md").read_text(encoding="utf-8")
    assert page.exists() and "<script" not in page.read_text(encoding="utf-8")
    contracts = load_contracts()
    for name, contract in contracts.items():
        assert f"## {name}" in md
    rows = {}
    section = None
    for line in md.splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif section in contracts and line.startswith("| ") and not line.startswith("| column"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[(section, cells[0])] = cells
    utilisation = rows[("marts.space_utilisation", "utilisation")]
    assert utilisation[8] == "share of seats (0-1)" and utilisation[9] != "-"
    assert rows[("marts.space_utilisation", "event_hour")][9] != "-"
    for (table, column), cells in rows.items():
        if not may_show(contracts[table].column(column)):
            assert cells[9] == "-", (table, column, cells[9])     # nothing personal, pseudonymous or confidential
    status = runner.invoke(main, ["status"])
    assert f"data dictionary (every table and column the roles read): {page}" in " ".join(status.stdout.split())
