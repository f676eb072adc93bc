"""COUNTER figures never sum across report types: a platform's total comes from one report
(PR, else DR, TR, IR), and the basis is named. Checked against what is independent of our
SQL: the generator's own request counts (caught as it draws them), the reports' own totals
read straight from the files, and the official R5.1 samples loaded through the real parser."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

import generator.core as generator_core
import generator.counter as generator_counter
from assets.feeds import feed_named
from assets.ingest import ingest_partition
from assets.models.sql_model import discover_models
from assets.reference import dim_eresource_cost_frame
from generator import generate, vocab
from generator.counter import platform_slug
from schemas.model import conform, contract_for
from warehouse.lake.partitions import write_table
from warehouse.lake.views import compute_connection
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

MODELS = {m.qualified_name: m for m in discover_models()}
SEPTEMBER = dt.date(2025, 9, 1)
DR_ONLY, TR_ONLY = vocab.PLATFORMS[1], vocab.PLATFORMS[2]      # their PR (and DR) taken away
COP5 = "Project-Counter-cop5__{}_sample_r51.{}"


def _load(settings: Settings, library, month: str) -> None:
    """The month's COUNTER files through the real feed: parser, staging Parquet, meta tables."""
    ingest_partition(feed_named("counter"), month, settings, library, Pseudonymiser.load(settings.secrets_dir), "run-1")


def _build(settings: Settings, library) -> None:
    """The COUNTER fact and the marts built from it, written as the pipeline writes them."""
    _write(settings, "core.dim_eresource_cost", dim_eresource_cost_frame(library))
    for name in ("core.fact_counter_usage", "marts.eresource_platform_monthly", "marts.key_figures",
                 "marts.eresource_top_monthly"):
        con = compute_connection(settings)
        try:
            frame = con.sql(MODELS[name].sql).pl()
        finally:
            con.close()
        _write(settings, name, frame)


def _write(settings: Settings, name: str, frame: pl.DataFrame) -> None:
    contract = contract_for(name)
    write_table(settings, contract, conform(frame, contract))


def _query(settings: Settings, sql: str) -> pl.DataFrame:
    con = compute_connection(settings)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory, library):
    """A tiny generated library's September COUNTER files, with the generator's true requests per
    platform and per title caught as write_month draws them; one platform's PR removed (it
    has DR and TR left), another's PR and DR (TR left)."""
    settings = Settings(tmp_path_factory.mktemp("counter") / "home").ensure()
    truth: dict[str, int] = {}
    title_truth: dict[tuple[str, str], int] = defaultdict(int)       # (platform, title)
    real_write, real_usage = generator_counter.write_month, generator_counter.usage

    def write_month(folder, month, fraction, views, downloads, searches, journals, rng, ebook_shift=0.0, **more):
        calls = []

        def usage(rng, requests, extra_views):          # first call of a platform: its titles
            calls.append(requests.copy())
            return real_usage(rng, requests, extra_views)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(generator_counter, "usage", usage)
            written = real_write(folder, month, fraction, views, downloads, searches, journals, rng, ebook_shift,
                                 **more)
        assert len(calls) == 2 * len(vocab.PLATFORMS)     # titles, then databases, per platform
        for pi, platform in enumerate(vocab.PLATFORMS):
            requests = calls[2 * pi]
            assert len(requests) == len(journals.title[pi])
            truth[platform.name] = int(requests.sum())
            for t, title in enumerate(journals.title[pi]):
                title_truth[(platform.name, title)] += int(requests[t])
        return written

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generator_core, "write_month", write_month)
        generate(settings.landing, library, scale="tiny", seed=42, start=SEPTEMBER, days=2)
    folder = settings.landing / "counter" / "2025-09"
    dr_file = folder / f"{platform_slug(DR_ONLY)}_DR_2025-09.json"
    dr_items = json.loads(dr_file.read_text(encoding="utf-8"))["Report_Items"]
    dr_total = sum(v for item in dr_items for ap in item["Attribute_Performance"]
                   for v in ap["Performance"].get("Total_Item_Requests", {}).values())
    (folder / f"{platform_slug(DR_ONLY)}_PR_2025-09.tsv").unlink()
    (folder / f"{platform_slug(TR_ONLY)}_PR_2025-09.tsv").unlink()
    (folder / f"{platform_slug(TR_ONLY)}_DR_2025-09.json").unlink()
    _load(settings, library, "2025-09")
    _build(settings, library)
    return settings, truth, dict(title_truth), dr_total


def test_platform_totals_are_the_generators_true_requests_from_one_report(generated):
    settings, truth, _, dr_total = generated
    rows = _query(settings, "select platform, basis_report, total_item_requests, reports_received "
                            "from marts.eresource_platform_monthly where usage_month = DATE '2025-09-01'")
    got = {r["platform"]: r for r in rows.iter_rows(named=True)}
    assert set(got) == set(truth)
    for name, expected in truth.items():
        row = got[name]
        if name == DR_ONLY.name:
            # DR summed over databases, the report's own total (the generator splits it by database)
            assert (row["basis_report"], row["total_item_requests"], row["reports_received"]) == ("DR", dr_total, "DR, TR")
        elif name == TR_ONLY.name:
            assert (row["basis_report"], row["total_item_requests"], row["reports_received"]) == ("TR", expected, "TR")
        else:
            assert (row["basis_report"], row["total_item_requests"], row["reports_received"]) == ("PR", expected, "DR, PR, TR")


def test_september_key_figure_counts_each_platform_once(generated):
    settings, truth, _, dr_total = generated
    expected = sum(v for k, v in truth.items() if k != DR_ONLY.name) + dr_total
    figures = _query(settings, "select month, eresource_requests, eresource_basis from marts.key_figures "
                               "where year = 2025 order by month nulls last")
    n_pr = len(vocab.PLATFORMS) - 2
    basis = f"PR {n_pr} platforms; DR 1 platform; TR 1 platform"
    assert figures.rows() == [(9, expected, basis), (None, expected, basis)]
    # what adding every report gave: about three times as much
    summed = _query(settings, "select sum(usage_count) as n from core.fact_counter_usage "
                              "where metric_type = 'Total_Item_Requests'")["n"][0]
    assert summed > 2.5 * expected


def test_top_lists_take_each_level_from_its_own_report(generated):
    settings, truth, title_truth, dr_total = generated
    top = _query(settings, "select level, name, platform, basis_report, total_item_requests from marts.eresource_top_monthly "
                           "where usage_month = DATE '2025-09-01'")
    platforms = top.filter(pl.col("level") == "platform")
    expected = {k: (dr_total if k == DR_ONLY.name else v) for k, v in truth.items()}
    best = sorted(expected.values(), reverse=True)[:10]
    assert sorted(platforms["total_item_requests"].to_list(), reverse=True) == best
    for name, basis, requests in platforms.select("name", "basis_report", "total_item_requests").rows():
        assert requests == expected[name]
        assert basis == {DR_ONLY.name: "DR", TR_ONLY.name: "TR"}.get(name, "PR")
    titles = top.filter(pl.col("level") == "title")
    assert titles.height == 10 and set(titles["basis_report"]) == {"TR"}
    # a title is one platform's: journals of one name on two platforms are two titles
    for name, platform, requests in titles.select("name", "platform", "total_item_requests").rows():
        assert requests == title_truth[(platform, name)], (platform, name)
    assert set(top.filter(pl.col("level") == "database")["basis_report"]) == {"DR"}


def test_cost_per_use_divides_by_the_platforms_own_requests(generated):
    settings, truth, _, _ = generated
    name = next(n for n in truth if n not in (DR_ONLY.name, TR_ONLY.name))
    _write(settings, "core.dim_eresource_cost",
           pl.DataFrame([{"level": "platform", "name": name, "cost_year": 2025, "cost": 120_000.0}]))
    row = _query(settings, MODELS["marts.eresource_top_monthly"].sql).filter((pl.col("level") == "platform") & (pl.col("name") == name)).row(0, named=True)
    assert row["cost"] == 10_000.0
    assert row["cost_per_use"] == pytest.approx(10_000.0 / truth[name])


# ---- the official R5.1 samples: one platform, PR_P1, DR_D1, TR, TR_J3 and IR_A1 of a month ----

def _tsv_requests(path: Path, regular_only: bool = False, title: str | None = None) -> dict[dt.date, int]:
    """Total_Item_Requests per month (of one title) read straight from a COUNTER TSV, not through our parser."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    rows = list(csv.reader(lines[14:], delimiter="\t"))
    head = rows[0]
    months = [(i, dt.datetime.strptime(h, "%b-%Y").date()) for i, h in enumerate(head) if h[:3].isalpha() and h[-4:].isdigit()]
    out: dict[dt.date, int] = defaultdict(int)
    for row in rows[1:]:
        cell = dict(zip(head, row))
        if cell["Metric_Type"] != "Total_Item_Requests":
            continue
        if regular_only and cell.get("Access_Method", "Regular") != "Regular":
            continue
        if title is not None and cell["Title"] != title:
            continue
        for i, month in months:
            out[month] += int(row[i] or 0)
    return dict(out)


def _json_requests(path: Path) -> dict[dt.date, int]:
    out: dict[dt.date, int] = defaultdict(int)
    for item in json.loads(path.read_text(encoding="utf-8"))["Report_Items"]:
        for ap in item["Attribute_Performance"]:
            for month, v in ap["Performance"].get("Total_Item_Requests", {}).items():
                out[dt.date.fromisoformat(month + "-01")] += v
    return dict(out)


SAMPLES = {"PR_P1": ("PRP1", "tsv"), "DR_D1": ("DRD1", "json"), "TR": ("TR", "tsv"), "TR_J3": ("TRJ3", "tsv"),
           "IR_A1": ("IRA1", "tsv")}


# A month's folder keeps that month's rows (the others go to quarantine), and the same file in a
# second folder is a redelivery, loaded once: the samples are loaded as January's reports.
SAMPLE_MONTHS = ("2022-01",)


def _samples_home(tmp_path, data_dir, library, reports: list[str]) -> Settings:
    settings = Settings(tmp_path / "home").ensure()
    for month in SAMPLE_MONTHS:
        folder = settings.landing / "counter" / month
        folder.mkdir(parents=True)
        for report in reports:
            code, ext = SAMPLES[report]
            shutil.copy(data_dir / "samples" / COP5.format(code, ext), folder / f"Platform1_{report}_{month}.{ext}")
        _load(settings, library, month)
    _build(settings, library)
    return settings


def _in_months(figures: dict[dt.date, int]) -> dict[dt.date, int]:
    return {m: n for m, n in figures.items() if f"{m:%Y-%m}" in SAMPLE_MONTHS}


def _platform_figures(settings: Settings) -> dict[dt.date, tuple[str, int]]:
    rows = _query(settings, "select usage_month, basis_report, total_item_requests from marts.eresource_platform_monthly "
                            "where platform = 'Platform 1'")
    return {m: (b, n) for m, b, n in rows.rows()}


def test_official_samples_platform_figure_is_the_platform_reports_own(tmp_path, data_dir, library):
    settings = _samples_home(tmp_path, data_dir, library, list(SAMPLES))
    samples = data_dir / "samples"
    pr = _in_months(_tsv_requests(samples / COP5.format("PRP1", "tsv")))
    dr = _in_months(_json_requests(samples / COP5.format("DRD1", "json")))
    tr = _in_months(_tsv_requests(samples / COP5.format("TR", "tsv")))
    assert len(pr) == len(SAMPLE_MONTHS)
    assert _platform_figures(settings) == {m: ("PR_P1", n) for m, n in pr.items()}
    figures = _query(settings, "select month, eresource_requests, eresource_basis from marts.key_figures "
                               "where year = 2022 order by month nulls last")
    assert figures["eresource_requests"].to_list() == [pr[m] for m in sorted(pr)] + [sum(pr.values())]
    assert set(figures["eresource_basis"]) == {"PR_P1 1 platform"}
    assert all(dr[m] > 0 and tr[m] > 0 for m in pr)       # the DR and TR loaded had use that was not added
    # Title 3 is in the TR and in its view TR_J3: its place in the title list counts the TR alone
    title3 = _query(settings, "select basis_report, total_item_requests from marts.eresource_top_monthly "
                              "where level = 'title' and name = 'Title 3'").rows()
    tr3 = _in_months(_tsv_requests(samples / COP5.format("TR", "tsv"), regular_only=True, title="Title 3"))
    j3 = _in_months(_tsv_requests(samples / COP5.format("TRJ3", "tsv"), title="Title 3"))
    assert title3 == [("TR", n) for n in tr3.values()] and all(n > 0 for n in j3.values())


def test_official_samples_without_a_platform_report_fall_back_in_order(tmp_path, data_dir, library):
    samples = data_dir / "samples"
    dr = _in_months(_json_requests(samples / COP5.format("DRD1", "json")))
    settings = _samples_home(tmp_path / "dr", data_dir, library, ["DR_D1", "TR", "IR_A1"])
    assert _platform_figures(settings) == {m: ("DR_D1", n) for m, n in dr.items()}
    # TR alone: its TDM rows are text and data mining, kept apart as the standard views do
    tr_regular = _in_months(_tsv_requests(samples / COP5.format("TR", "tsv"), regular_only=True))
    assert tr_regular != _in_months(_tsv_requests(samples / COP5.format("TR", "tsv")))
    settings = _samples_home(tmp_path / "tr", data_dir, library, ["TR", "IR_A1"])
    assert _platform_figures(settings) == {m: ("TR", n) for m, n in tr_regular.items()}
    settings = _samples_home(tmp_path / "ir", data_dir, library, ["IR_A1"])
    ir = _in_months(_tsv_requests(samples / COP5.format("IRA1", "tsv")))
    assert _platform_figures(settings) == {m: ("IR_A1", n) for m, n in ir.items()}
    basis = _query(settings, "select distinct eresource_basis from marts.key_figures")["eresource_basis"].to_list()
    assert basis == ["IR_A1 1 platform"]


# ---- a discipline's COUNTER requests beside a fall in its borrowing ----

def _write(settings: Settings, table: str, rows: list[dict]) -> None:
    contract = contract_for(table)
    write_table(settings, contract, conform(pl.DataFrame(rows, schema=contract.polars_schema()), contract))


def test_a_falling_discipline_counts_its_titles_requests_from_one_title_report(tmp_path, library):
    from assets.reference import BUILDERS

    settings = Settings(tmp_path / "home").ensure()
    for table in ("dim_date", "dim_discipline"):
        contract = contract_for(f"core.{table}")
        write_table(settings, contract, conform(BUILDERS[table](library), contract))
    _write(settings, "core.dim_title", [{"bib_id": "B1", "title": "A book", "isbn": "9787300000017",
                                         "classification_scheme": "clc", "class_number": "I", "discipline_code": "I"}])
    loans = [dt.datetime(2025, 9, d, 10) for d in range(2, 12)] + [dt.datetime(2025, 10, 30, 10)]   # 10, then 1
    _write(settings, "core.fact_loan", [
        {"loan_id": f"L{i}", "item_number": i, "bib_id": "B1", "patron_pid": f"{i:064x}", "pid_key_version": 1,
         "category_code": "UG", "branch_code": "MAIN", "issued_at": at, "issue_date": at.date(),
         "due_date": at.date() + dt.timedelta(days=30), "renew_count": 0, "is_returned": False,
         "is_overdue": False, "item_known": True} for i, at in enumerate(loans)])
    # The book's use in each month, as the TR, its view TR_B1 and the PR all count it, with TDM beside.
    counts = {dt.date(2025, 9, 1): 40, dt.date(2025, 10, 1): 30}
    usage = []
    for month, n in counts.items():
        for report, access, count in (("TR", "Regular", n), ("TR", "TDM", 7), ("TR_B1", None, n)):
            usage.append({"usage_month": month, "release": "5.1", "report_id": report, "platform": "P",
                          "title": "A book", "isbn": "9787300000017", "data_type": "Book",
                          "access_method": access, "metric_type": "Total_Item_Requests", "usage_count": count})
        usage.append({"usage_month": month, "release": "5.1", "report_id": "PR", "platform": "P",
                      "data_type": "Book", "metric_type": "Total_Item_Requests", "usage_count": n})
    _write(settings, "core.fact_counter_usage", usage)
    con = compute_connection(settings)
    try:
        falls = con.sql(MODELS["marts.subject_borrowing_decline"].sql).pl()
    finally:
        con.close()
    row = falls.filter(pl.col("comparison") == "month_over_month").row(0, named=True)
    assert (row["discipline_code"], row["loans"], row["baseline_loans"]) == ("I", 1, 10)
    assert (row["eresource_requests"], row["baseline_eresource_requests"]) == (30, 40)
