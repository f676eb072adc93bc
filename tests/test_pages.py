"""The pages Shuku writes read at a glance: in headless Chromium, at 1280 px and on a phone (390 px),
nothing overflows its box or the screen (a screenshot of each is left in the test's folder), every
chart has a legend, the back-test shows its errors to two decimals with the winner marked, the
subject-decline table has every cause's columns, and the transparency report picks a year with data."""

import datetime as dt
import re

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from tests.layout import layout_problems
from tests.published import published_home, week_home
from warehouse.data_dictionary import dictionary_path
from warehouse.lake.views import compute_connection
from warehouse.privacy.consent import set_consent
from warehouse.privacy.transparency import latest_year_with_data
from warehouse.settings import Settings

OFFLINE = re.compile(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.IGNORECASE)


def _rows(settings: Settings, sql: str) -> list[tuple]:
    con = compute_connection(settings)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory, library):
    """The lineage page, the library report, the transparency report and the Data Docs of the
    session's nine tiny days, and the data dictionary of the session's published home (read only)."""
    settings = week_home(tmp_path_factory, library).settings
    out = tmp_path_factory.mktemp("pages")
    runner = CliRunner(env={"SHUKU_HOME": str(settings.home)})
    for args in (["lineage", "page", "--out", str(out / "lineage.html")],
                 ["report", "library", "--out", str(out / "report.html")],
                 ["report", "transparency", "--out", str(out)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    (transparency,) = out.glob("transparency-*.html")
    docs = settings.home / "quality" / "docs"
    return settings, {"lineage": out / "lineage.html", "report": out / "report.html", "transparency": transparency,
                      "quality index": docs / "index.html", "quality of a table": docs / "staging.gate_event.html",
                      "data dictionary": dictionary_path(published_home(tmp_path_factory, library))}


@pytest.mark.parametrize("name", ["lineage", "report", "transparency", "quality index", "quality of a table",
                                  "data dictionary"])
def test_page_fits_a_desktop_and_a_phone_and_loads_nothing(pages, name, tmp_path):
    page = pages[1][name]
    text = page.read_text(encoding="utf-8")
    assert not OFFLINE.search(text), f"{name} fetches from the network"
    problems = layout_problems(page, tmp_path)
    assert problems == {1280: [], 390: []}, problems
    assert 'name="viewport"' in text, "phones would lay the page out at 980 px and shrink it"
    assert (tmp_path / f"{page.stem}.png").stat().st_size > 10_000


def test_every_chart_and_heat_map_has_a_legend(pages):
    text = pages[1]["report"].read_text(encoding="utf-8")
    charts = re.findall(r'<svg class="chart" id="([^"]+)".*?</svg>', text, re.S)
    assert len(charts) == 12 and {f"narrow-{c}" for c in charts if c.startswith("chart-")} <= set(charts), charts
    for chart in re.findall(r'<svg class="chart" id="[^"]+".*?</svg>', text, re.S):
        assert 'class="legend"' in chart, chart[:120]
    heat = text.split('id="chart-occupancy-heatmap"')[1].split("</svg>")[0]
    assert "no data" in heat and re.search(r">0(\.0)?%<", heat), "the heat map's scale runs from 0 % and says what grey is"


def test_backtest_errors_to_two_decimals_with_the_winner_marked(pages):
    settings, paths = pages
    table = paths["report"].read_text(encoding="utf-8").split('id="backtest"')[1].split("</table>")[0]
    errors = _rows(settings, "select method, avg(mape) from marts.seat_demand_backtest group by method")
    assert len(errors) == 2
    lowest = min(mape for _, mape in errors)
    for method, mape in errors:
        row = table.split(f'data-label="method">{method}')[1].split("</tr>")[0]
        assert f'data-label="mean MAPE (%)">{100 * mape:.2f}</td>' in row
        assert ("best" in row) == (mape == lowest), (errors, row)


def test_subject_decline_table_has_every_cause_column(pages):
    settings, paths = pages
    table = paths["report"].read_text(encoding="utf-8").split('id="falling-subjects"')[1].split("</table>")[0]
    for column in ("loans", "borrowers", "new titles", "e-resource requests", "searches per loan"):
        assert f"<th>{column}</th>" in table, column
    first = _rows(settings, "select eresource_requests, baseline_eresource_requests from marts.subject_borrowing_decline "
                            "order by loan_month desc, change, discipline_code limit 1")
    assert first, "the nine days have a subject that fell"
    now, before = ("–" if v is None else f"{v:,}" for v in first[0])
    assert f'data-label="e-resource requests">{before} → {now}</td>' in table


def test_transparency_report_defaults_to_the_latest_year_with_data(tmp_path):
    settings = Settings(tmp_path / "home").ensure()
    assert latest_year_with_data(settings) == dt.date.today().year
    set_consent(settings, "p" * 64, 1, profiling=True, recommendations=False, changed_by="desk",
                now=dt.datetime(2024, 6, 1, 9, 0))
    assert latest_year_with_data(settings) == 2024
    result = CliRunner(env={"SHUKU_HOME": str(settings.home)}).invoke(main, ["report", "transparency",
                                                                              "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "year 2024, the latest year with data" in result.output
    md = (tmp_path / "out" / "transparency-2024.md").read_text(encoding="utf-8")
    assert "At the end of 2024, 1 reader(s) had a recorded choice: profiling yes 1" in md
