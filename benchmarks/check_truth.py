"""The published figures against the generator's ground truth, on a generated library.

    .venv/bin/python benchmarks/check_truth.py --scale small --days 14
    .venv/bin/python benchmarks/check_truth.py --scale university --days 30 --work /tmp/uni

Generates a library (or reuses the one in `--work` made with the same arguments, as
benchmarks/bench_pipeline.py does), runs every stage, then prints per figure what truly
happened (`truth`), the same less the events whose landing line the generator damaged on
purpose (`delivered`: what the pipeline can see), what the warehouse publishes, and the
difference published − delivered. Lists (top lists, hourly occupancy, forecast actuals) are
compared row by row: rows the truth has, and how many the warehouse has otherwise.
Exits 1 when any figure differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import polars as pl  # noqa: E402

from bench_pipeline import _generated, run_stages  # noqa: E402
from generator import expected  # noqa: E402

MARTS = ("key_figures", "circulation_top_monthly", "space_utilisation", "eresource_top_monthly",
         "seat_demand_forecast")


def _published(home: Path) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    from warehouse.lake.views import compute_connection
    from warehouse.settings import Settings

    con = compute_connection(Settings(home))
    try:
        marts = {name: con.sql(f"select * from marts.{name}").pl() for name in MARTS}
        disciplines = dict(con.execute(
            "select bib_id, discipline_code from core.dim_title where discipline_code is not null").fetchall())
    finally:
        con.close()
    return marts, disciplines


def _differing(want: pl.DataFrame, got: pl.DataFrame, keys: list[str], values: list[str]) -> int:
    """Rows of either side without an equal row (same keys, same values) on the other."""
    a = want.select(keys + values).unique()
    b = got.select(keys + values).unique()
    return a.join(b, on=keys + values, how="anti", nulls_equal=True).height + \
        b.join(a, on=keys + values, how="anti", nulls_equal=True).height


def compare(truth: Path, home: Path) -> list[tuple[str, int | str, int | str, int, int]]:
    """(figure, truth, delivered, published, published − delivered) rows."""
    from warehouse.library import load_library
    from warehouse.settings import Settings

    marts, disciplines = _published(home)
    rows = []
    everything = {(r["year"], r["month"]): r for r in expected.key_figures(truth, delivered=False).iter_rows(named=True)}
    seen = {(r["year"], r["month"]): r for r in expected.key_figures(truth).iter_rows(named=True)}
    got = {(r["year"], r["month"]): r for r in marts["key_figures"].iter_rows(named=True)}
    for key in sorted(seen, key=lambda k: (k[0], k[1] or 13)):
        when = f"{key[0]}-{key[1]:02d}" if key[1] else f"{key[0]}"
        for figure in expected.KEY_FIGURES:
            published = got.get(key, {}).get(figure, 0) or 0
            rows.append((f"key_figures {when} {figure}", everything[key][figure], seen[key][figure], published,
                         published - seen[key][figure]))

    def listed(name: str, want: pl.DataFrame, published: pl.DataFrame, keys: list[str], values: list[str]) -> None:
        rows.append((f"{name} rows", "", want.height, published.height,
                     _differing(want, published, keys, values)))

    top = ["loan_month", "scope", "scope_value", "rank"]
    listed("circulation_top_monthly", expected.circulation_top(truth, disciplines), marts["circulation_top_monthly"],
           top, ["bib_id", "loans", "readers", "previous_rank"])
    keys = ["zone_code", "event_date", "event_hour"]
    hours = expected.zone_hours(truth)
    moved = pl.col("entries") + pl.col("exits") > 0
    listed("space_utilisation entries/exits", hours.filter(moved), marts["space_utilisation"].filter(moved),
           keys, ["entries", "exits"])
    clean = hours.filter(pl.col("clean"))
    listed("space_utilisation peaks (clean zone-days)", clean,
           marts["space_utilisation"].join(clean.select(keys), on=keys, how="semi"), keys, ["occupancy_peak"])
    listed("eresource_top_monthly (COUNTER lists)", expected.eresource_top(truth),
           marts["eresource_top_monthly"].filter(pl.col("level").is_in(expected.COUNTER_LEVELS)),
           ["usage_month", "level", "rank"], ["name", "platform", "total_item_requests", "total_item_investigations",
                                              "unique_item_requests", "ezproxy_accesses"])
    demand = expected.seat_demand(truth, load_library(Settings(home).library_config)).filter(pl.col("clean"))
    holdout = marts["seat_demand_forecast"].filter(pl.col("period") == "holdout").select(
        "branch_code", pl.col("forecast_date").alias("event_date"), "event_hour",
        pl.col("actual_demand").cast(pl.Int64).alias("demand"))
    keys = ["branch_code", "event_date", "event_hour"]
    holdout = holdout.join(demand.select(keys), on=keys, how="semi")
    listed("seat_demand_forecast actuals (clean days)", demand.join(holdout.select(keys), on=keys, how="semi"),
           holdout, keys, ["demand"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "university"])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2025, 9, 1))
    parser.add_argument("--work", type=Path, help="keep the generated library and its warehouse here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="check-truth-"))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "generated" / "truth").is_dir():
        (work / "generated.json").unlink(missing_ok=True)      # generated before the truth was written
    home = _generated(work, args.scale, args.seed, args.days, args.start).home
    for stage in run_stages(home):
        print(f"{stage['stage']:<40}{stage['seconds']:>8.1f} s")
    rows = compare(home / "truth", home)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'figure':<{width}}{'truth':>11}{'delivered':>11}{'published':>11}{'difference':>11}")
    for figure, everything, seen, published, difference in rows:
        mark = "" if difference == 0 else "   ≠"
        print(f"{figure:<{width}}{everything!s:>11}{seen:>11}{published:>11}{difference:>11}{mark}")
    print("\ndelivered = truth less the events on lines the generator damaged; for lists, "
          "difference = rows without an equal row on the other side")
    sys.exit(1 if any(r[4] for r in rows) else 0)


if __name__ == "__main__":
    main()
