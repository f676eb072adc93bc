"""A home folder copied (or restored) elsewhere, the original deleted: the copy's trace names its
own landing files relative to it, its queries and views read its own files, and it runs on.
Also `shuku trace --partition` over a month boundary: a month keeps the daily landing files of
that month, a day the files of that day."""

import datetime as dt
import hashlib
import json
import os
import shutil

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from assets.feeds import FEEDS
from generator import generate
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.runner import plan, run_stage
from schemas.model import contract_for
from warehouse.lake.views import refresh_warehouse_views
from warehouse.settings import Settings

pytestmark = pytest.mark.slow

# Two days across a month boundary (the library is closed on 1–3 October), then one more day in the copy.
START = dt.date(2025, 10, 31)
DAYS = 2
EXTRA_DAY = "2025-11-02"
COUNTS = {
    "loans": "select count(*) as n from core.fact_loan",
    "gate_events": "select count(*) as n from core.fact_gate_event",
    "circulation": "select count(*) as n from staging.circulation_event",
    "quarantined": "select count(*) as n from quarantine.circulation",
    "ingest_log": "select count(*) as n from meta.ingest_log",
    "key_figures": "select count(*) as n from marts.key_figures",
}


def _cli(home, *args) -> object:
    return CliRunner().invoke(main, list(args), env={"SHUKU_HOME": str(home)})


def _counts(home) -> dict[str, int]:
    counts = {}
    for name, query in COUNTS.items():
        result = _cli(home, "sql", "--format", "json", query)
        assert result.exit_code == 0, result.output
        counts[name] = json.loads(result.stdout)["n"]
    return counts


@pytest.fixture(scope="module")
def copied(tmp_path_factory, library):
    """A home built through the real pipeline, copied, the original deleted; the copy's counts
    before anything ran in it, then the result of one more generated day run in the copy."""
    root = tmp_path_factory.mktemp("copied")
    original = Settings(root / "original").ensure()
    generate(original.landing, library, scale="tiny", seed=7, start=START, days=DAYS)
    defs = build_definitions(original)
    instance = dg.DagsterInstance.ephemeral()
    results = [run_stage(defs, instance, stage) for stage in plan(original, None, None, list(FEEDS))]
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    before = _counts(original.home)

    copy = Settings(root / "restored" / "home")
    shutil.copytree(original.home, copy.home, symlinks=True)
    shutil.rmtree(original.home)
    after = _counts(copy.home)

    dagster_home = os.environ.get("DAGSTER_HOME")
    try:
        generated = _cli(copy.home, "generate", "--scale", "tiny", "--seed", "7", "--start", EXTRA_DAY, "--days", "1")
        assert generated.exit_code == 0, generated.output
        ran = _cli(copy.home, "run", "--from", EXTRA_DAY, "--to", EXTRA_DAY)
    finally:
        if dagster_home is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = dagster_home
    return {"settings": copy, "old_home": str(original.home), "before": before, "after": after, "run": ran}


def _trace(home, target: str, *extra: str) -> dict:
    result = _cli(home, "trace", target, "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _landing(trace: dict) -> dict[str, dict]:
    return {f["file"]: f for f in trace["landing_files"] if f["kind"] == "landing"}


def test_trace_in_the_copy_names_its_own_landing_files_relative_to_it(copied):
    settings, old = copied["settings"], copied["old_home"]
    landing = _landing(_trace(settings.home, "core.fact_loan.issue_date"))
    circulation = sorted(n for n in landing if n.startswith("landing/circulation/statistics_"))
    assert circulation == [f"landing/circulation/statistics_{d}.csv" for d in ("2025-10-31", "2025-11-01", EXTRA_DAY)]
    for name in circulation:
        data = (settings.home / name).read_bytes()
        assert landing[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert landing[name]["bytes"] == len(data) and landing[name]["ingested_at"]
        assert landing[name]["present"] and landing[name]["path"] == str(settings.home / name)

    figure = _trace(settings.home, "marts.key_figures.loans")
    reached = _landing(figure)
    assert reached, "marts.key_figures.loans reaches landing files"
    assert all((settings.home / name).is_file() for name in reached), sorted(reached)
    assert old not in json.dumps(figure)

    text = _cli(settings.home, "trace", "core.fact_loan.issue_date")
    assert text.exit_code == 0, text.output
    assert "landing landing/circulation/statistics_2025-10-31.csv  sha256 " in text.output
    assert old not in text.output and "not in this home" not in text.output


def test_queries_in_the_copy_count_what_the_original_held(copied):
    assert copied["after"] == copied["before"]
    assert all(n > 0 for name, n in copied["before"].items()), copied["before"]


def test_the_copys_views_hold_no_path_of_the_old_home(copied, tmp_path, monkeypatch):
    """A plain DuckDB client: in the home folder it reads the copy's files; elsewhere it fails
    ("No files found"), never reading another home's files."""
    settings, old = copied["settings"], copied["old_home"]
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        views = dict(con.execute("select schema_name || '.' || view_name, sql from duckdb_views() "
                                 "where not internal").fetchall())
        assert "core.fact_loan" in views and "lake/core/fact_loan/" in views["core.fact_loan"]
        assert not [name for name, sql in views.items() if old in sql or "'/" in sql]
        monkeypatch.chdir(tmp_path)
        with pytest.raises(duckdb.IOException, match="No files found"):
            con.execute("select count(*) from core.fact_loan").fetchall()
        monkeypatch.chdir(settings.home)
        assert con.execute("select count(*) from core.fact_loan").fetchone()[0] > copied["before"]["loans"]
    finally:
        con.close()


def test_nothing_shuku_reads_back_names_the_old_home(copied):
    """Role databases, their records, the lake (lineage tables, ingest log, checksums, model
    records): no byte of the old home's path. The events file keeps where each event was
    written (read relative to the home), the Dagster folder its own run history."""
    settings, old = copied["settings"], copied["old_home"].encode()
    naming = [p.relative_to(settings.home).as_posix() for p in settings.home.rglob("*")
              if p.is_file() and p.parts[len(settings.home.parts)] not in ("dagster", "landing", "lineage")
              and old in p.read_bytes()]
    assert naming == []
    namespaces = _cli(settings.home, "sql", "--format", "json",
                      "select distinct namespace from meta.lineage_datasets "
                      "union select distinct input_namespace from meta.lineage_column_edges")
    found = {json.loads(line)["namespace"] for line in namespaces.stdout.splitlines()}
    assert {"file://landing", "duckdb://warehouse.duckdb"} <= found
    assert not [n for n in found if old.decode() in n]


def test_views_with_absolute_paths_are_written_again_relative(copied, tmp_path):
    """A warehouse.duckdb from before paths were relative: the next refresh, of any table,
    writes every view again."""
    settings = Settings(tmp_path / "home")
    shutil.copytree(copied["settings"].home / "lake" / "core" / "dim_date", settings.home / "lake" / "core" / "dim_date")
    stale = f"'{copied['old_home']}/lake/core/fact_loan/**/*.parquet'"
    con = duckdb.connect(str(settings.warehouse_db))
    con.execute("create schema core")
    # (a view reading the old glob would not bind without the old files: the literal is enough)
    con.execute(f"create view core.fact_loan as select 1 as x where {stale} is not null")
    con.close()
    refresh_warehouse_views(settings, [contract_for("core.dim_date")])
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        sql = dict(con.execute("select schema_name || '.' || view_name, sql from duckdb_views() where not internal")
                   .fetchall())
    finally:
        con.close()
    assert copied["old_home"] not in sql["core.fact_loan"] and "issue_date" in sql["core.fact_loan"]
    assert "read_parquet('lake/core/dim_date/" in sql["core.dim_date"]


def test_a_run_of_one_more_day_in_the_copy_succeeds(copied):
    assert copied["run"].exit_code == 0, copied["run"].output
    settings = copied["settings"]
    days = _cli(settings.home, "sql", "--format", "json",
                "select count(distinct issue_date) as n from core.fact_loan where issue_date >= DATE '2025-11-02'")
    assert json.loads(days.stdout)["n"] == 1


def test_the_lineage_page_renders_in_the_copy(copied, tmp_path):
    settings, old = copied["settings"], copied["old_home"]
    out = tmp_path / "lineage.html"
    result = _cli(settings.home, "lineage", "page", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "landing/gates/turnstile_2025-10-31.csv.gz" in page and old not in page


def test_partition_of_a_month_keeps_that_months_daily_landing_files(copied):
    """Daily files written by two runs (the first two days, then the copy's extra day) fall
    into the months they belong to, through a monthly mart and through the fact."""
    home = copied["settings"].home
    november = _landing(_trace(home, "core.fact_loan.issue_date", "--partition", "2025-11"))
    assert sorted(n for n in november if n.startswith("landing/circulation/statistics_")) == [
        "landing/circulation/statistics_2025-11-01.csv", f"landing/circulation/statistics_{EXTRA_DAY}.csv"]
    october = _landing(_trace(home, "core.fact_loan.issue_date", "--partition", "2025-10"))
    assert sorted(n for n in october if n.startswith("landing/circulation/statistics_")) == [
        "landing/circulation/statistics_2025-10-31.csv"]

    for month in ("2025-10", "2025-11"):
        monthly = _landing(_trace(home, "marts.key_figures.loans", "--partition", month))
        daily = {n: f for n, f in monthly.items() if len(f["partition_key"] or "") == 10}
        assert daily, (month, sorted(monthly))
        assert {f["partition_key"][:7] for f in daily.values()} == {month}, sorted(daily)


def test_partition_of_a_day_keeps_that_days_landing_files(copied):
    home = copied["settings"].home
    day = _landing(_trace(home, "core.fact_loan.issue_date", "--partition", "2025-11-01"))
    assert [n for n in day if n.startswith("landing/circulation/statistics_")] == [
        "landing/circulation/statistics_2025-11-01.csv"]
    assert {f["partition_key"] for f in day.values()} <= {"2025-11-01", "all"}
