"""`shuku report library --out FILE.html`: one self-contained page of the marts a library reads.

The charts are inline SVG (pipelines/charts.py), so the page opens offline with no script and no CDN.
Every figure on it is read from the marts (and the daily loan counts from core.fact_loan).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from pipelines.charts import CHART_STYLE, bar_chart, both, heat_map, line_chart
from pipelines.charts import esc as _e
from pipelines.charts import number as _number
from pipelines.cli_shared import existing_settings
from warehouse.pages import STYLE, VIEWPORT, cell

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# marts.subject_borrowing_decline's candidate causes, each a (month, baseline) pair of columns
DECLINE_CAUSES = ("loans", "borrowers", "new titles", "e-resource requests", "searches per loan")


def _table(headers: list[str], rows: list[list], table_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(h, v if isinstance(v, str) else _number(v)) for h, v in zip(headers, row))
                   + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _backtest_table(errors: list[tuple]) -> str:
    """Each method's mean errors in per cent to two decimals (one decimal hides the gap between
    methods), the one with the lowest MAPE marked best."""
    best = min((a for _, a, _, _ in errors if a is not None), default=None)
    rows = [[f"{m} ★ best" if a is not None and a == best else m, "–" if a is None else f"{100 * a:.2f}",
             "–" if p is None else f"{100 * p:.2f}", n] for m, a, p, n in errors]
    return (_table(["method", "mean MAPE (%)", "mean peak error (%)", "origins × branches"], rows, "backtest")
            + "<p>★ best: the method with the lowest mean absolute percentage error over the back-test.</p>")


def _rows(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def _harvest_coverage(settings) -> str:
    """The coverage matrix of the COUNTER_SUSHI harvest (meta.counter_harvest), and why cells are missing."""
    from assets.eresources.coverage import MARKS, matrix, problems, stored

    frame = stored(settings)
    months, rows = matrix(frame)
    if not rows:
        return "<p>No COUNTER report was harvested over COUNTER_SUSHI (counter.platforms in the library config).</p>"
    legend = ", ".join(f"{mark} {status.replace('_', ' ')}" for status, mark in MARKS.items())
    return (f"<p>{_e(legend)}</p>" + _table(["platform", "report", *months], [[p, r, *marks] for p, r, marks in rows],
                                            "harvest-coverage")
            + _table(["month", "platform", "report", "status", "code", "reason"],
                     [[f"{p['usage_month']:%Y-%m}", p["platform"], p["report_id"], p["status"],
                       "" if p["code"] is None else str(p["code"]), p["reason"] or ""] for p in problems(frame)],
                     "harvest-problems"))


def render_library_report(settings) -> str:
    """The page, as one HTML string."""
    from warehouse.lake.views import compute_connection
    from warehouse.library import load_library

    library = load_library(settings.library_config)
    con = compute_connection(settings)
    try:
        sections = []
        figures = _rows(con, "select year, month, visits, loans, active_readers, eresource_requests, eresource_basis, "
                             "ezproxy_accesses, searches, zero_hit_searches from marts.key_figures "
                             "order by year, month nulls last")
        sections.append(("Key figures", _table(
            ["year", "month", "visits", "loans", "active readers", "e-resource requests", "COUNTER report used",
             "EZproxy accesses", "searches", "zero-hit searches"],
            [[str(r[0]), "year" if r[1] is None else str(r[1]), *r[2:]] for r in figures], "key-figures")))

        daily = _rows(con, "select issue_date, count(*) from core.fact_loan group by issue_date order by issue_date")
        sections.append(("Loans per day", both(lambda w: line_chart(
            "chart-loan-trend", "Loans per day", [d.strftime("%m-%d") for d, _ in daily],
            {"loans": [float(n) for _, n in daily]}, width=w))))

        month = con.execute("select max(loan_month) from marts.circulation_top_monthly").fetchall()[0][0]
        top = _rows(con, f"select rank, title, bib_id, loans, readers from marts.circulation_top_monthly "
                         f"where scope = 'overall' and loan_month = DATE '{month}' order by rank") if month else []
        sections.append((f"Most borrowed titles, {month:%Y-%m}" if month else "Most borrowed titles", both(lambda w: bar_chart(
            "chart-top-list", "Most borrowed titles", [f"{r[0]}. {r[1] or r[2]}" for r in top],
            {"loans": [r[3] for r in top], "readers": [r[4] for r in top]}, width=w))))

        heat = _rows(con, "select weekday, event_hour, sum(occupancy_mean) / sum(seat_capacity) from marts.occupancy_heatmap "
                          "group by weekday, event_hour")
        hours = sorted({h for _, h, _ in heat}) or list(range(8, 22))
        sections.append(("Occupancy by weekday and hour (share of seats, all zones)", both(lambda width: heat_map(
            "chart-occupancy-heatmap", "Occupancy heat map", list(WEEKDAYS), [f"{h:02d}" for h in hours],
            {(w - 1, hours.index(h)): float(v) for w, h, v in heat if v is not None}, width=width))))

        series = _rows(con, "select period, forecast_date, event_hour, sum(demand_forecast), sum(demand_lower), "
                            "sum(demand_upper), sum(actual_demand) from marts.seat_demand_forecast "
                            "group by period, forecast_date, event_hour order by forecast_date, event_hour")
        errors = _rows(con, "select method, avg(mape), avg(peak_error), count(*) from marts.seat_demand_backtest "
                            "group by method order by method")
        labels = [f"{d:%m-%d} {h:02d}h" for _, d, h, *_ in series]
        sections.append(("Seat demand: forecast against actuals (all branches, open hours)", both(lambda w: line_chart(
            "chart-seat-forecast", "Seat demand forecast against actuals", labels,
            {"forecast": [r[3] for r in series], "actual": [r[6] for r in series]},
            band=([r[4] for r in series], [r[5] for r in series]), width=w))
            + _backtest_table(errors)))

        emonth = con.execute("select max(usage_month) from marts.eresource_top_monthly").fetchall()[0][0]
        # a platform counted from another report than its PR says so beside its name
        eres = _rows(con, f"select name || case when basis_report <> 'PR' then ' (' || basis_report || ')' else '' end, "
                          f"total_item_requests, ezproxy_accesses from marts.eresource_top_monthly "
                          f"where level = 'platform' and usage_month = DATE '{emonth}' order by rank") if emonth else []
        sections.append((f"E-resource platforms, {emonth:%Y-%m}" if emonth else "E-resource platforms", both(lambda w: bar_chart(
            "chart-eresource-top", "E-resource top 10", [r[0] for r in eres],
            {"COUNTER Total_Item_Requests": [r[1] for r in eres], "EZproxy accesses": [r[2] for r in eres]}, width=w))))

        sections.append(("COUNTER harvest coverage", _harvest_coverage(settings)))

        falling = _rows(con, "select discipline_code, loan_month, comparison, change, loans, baseline_loans, borrowers, "
                             "baseline_borrowers, new_titles, baseline_new_titles, eresource_requests, "
                             "baseline_eresource_requests, round(searches_per_loan, 2), "
                             "round(baseline_searches_per_loan, 2) from marts.subject_borrowing_decline "
                             "order by loan_month desc, change, discipline_code limit 12")
        sections.append(("Subjects whose borrowing fell", both(lambda w: bar_chart(
            "chart-falling-subjects", "Fall of loans per open day",
            [f"{r[0]} {r[1]:%Y-%m} ({'MoM' if r[2] == 'month_over_month' else 'YoY'})" for r in falling],
            {"fall (%)": [round(-100 * r[3], 1) for r in falling]}, width=w))
            + "<p>Each cause: the month compared with → the month that fell.</p>"
            + _table(["discipline", "month", "comparison", "change", *DECLINE_CAUSES],
                     [[r[0], f"{r[1]:%Y-%m}", "MoM" if r[2] == "month_over_month" else "YoY", f"{r[3]:+.0%}",
                       *(f"{_number(r[i + 1])} → {_number(r[i])}" for i in range(4, 14, 2))] for r in falling],
                     "falling-subjects")))
    finally:
        con.close()

    body = "".join(f"<section><h2>{_e(title)}</h2>{content}</section>" for title, content in sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{VIEWPORT}<title>{_e(library.name)}: library report</title>
<style>{STYLE}{CHART_STYLE}
body {{ font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 2rem auto; padding: 0 1rem; max-width: 792px;
        color: #222; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin-top: 0.5rem; }}
td, th {{ border: 1px solid #ddd; padding: 2px 6px; text-align: right; }}
th {{ overflow-wrap: normal; }}
svg.chart {{ display: block; max-width: 100%; height: auto; }}
</style></head><body>
<h1>{_e(library.name)}</h1>
<p>Built {dt.date.today():%Y-%m-%d} from the warehouse marts. Figures are internal: small cells are not suppressed here.</p>
{body}
</body></html>
"""


@click.group()
def report():
    """Pages built from the warehouse."""


@report.command("library")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write.")
def library_report(out: Path):
    """One self-contained page of the library's marts (opens offline)."""
    page = render_library_report(existing_settings())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    click.echo(f"wrote {out} ({len(page):,} bytes)")
