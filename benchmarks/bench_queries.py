"""Analyst queries on the published role databases: latency through the SQL guard, the guard's
own cost, and the floor (the same checked statement on the same read-only database, no guard).

    .venv/bin/python benchmarks/bench_queries.py --scale small --days 28
    .venv/bin/python benchmarks/bench_queries.py --home var      # an existing, published home

Each query runs --repeat times; medians are printed. `shuku sql --role analyst` is
`run_guarded`: guard (parse, expand stars, resolve every column against the contracts),
open the role's database read-only with external access off, run, append to meta.access_log.
Aims: the marts' top-10 queries under 100 ms, a scan of the loans under 1 s, the guard's own
cost under 10 ms per query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_pipeline import run_stages  # noqa: E402

ROLE = "analyst"
QUERIES = {
    "top 10 loans (month)": "SELECT loan_month, rank, title, loans, readers FROM marts.circulation_top_monthly "
                            "WHERE scope = 'overall' ORDER BY loan_month DESC, rank LIMIT 10",
    "top 10 busiest hours": "SELECT event_date, event_hour, zone_code, occupancy_peak, utilisation "
                            "FROM marts.space_utilisation ORDER BY utilisation DESC, event_date, event_hour LIMIT 10",
    "top 10 e-resources": "SELECT usage_month, level, rank, name, total_item_requests FROM marts.eresource_top_monthly "
                          "ORDER BY usage_month DESC, level, rank LIMIT 10",
    "key figures": "SELECT * FROM marts.key_figures ORDER BY year, month NULLS LAST",
    "scan of loans": "SELECT branch_code, category_code, count(*) AS loans, avg(loan_days) AS mean_days, "
                     "sum(CASE WHEN is_overdue THEN 1 ELSE 0 END) AS overdue, count(DISTINCT bib_id) AS titles "
                     "FROM core.fact_loan GROUP BY branch_code, category_code ORDER BY loans DESC",
}
AIMS_MS = {"scan of loans": 1000.0}
TOP10_AIM_MS, GUARD_AIM_MS = 100.0, 10.0


def _median_ms(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "university"])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--home", type=Path, help="an existing home whose role databases are published")
    args = parser.parse_args()

    from warehouse.access import publish
    from schemas.model import load_contracts
    from warehouse.guard import guard, open_role_database, run_guarded
    from warehouse.settings import Settings

    if args.home:
        settings = Settings(args.home)
    else:
        from generator import generate
        from warehouse.library import load_library

        settings = Settings(Path(tempfile.mkdtemp(prefix="shuku-bench-queries-")) / "home").ensure()
        generate(settings.landing, load_library(settings.library_config), scale=args.scale, seed=args.seed,
                 start=dt.date(2025, 9, 1), days=args.days)
        began = time.perf_counter()
        run_stages(settings.home)
        publish(settings)
        print(f"built and published {args.scale}, {args.days} days in {time.perf_counter() - began:.1f} s "
              f"→ {settings.home}")
    contracts = load_contracts()

    def floor(sql: str):
        con = open_role_database(settings, ROLE)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    print(f"{'query':<24}{'rows':>7}{'shuku sql ms':>14}{'guard ms':>10}{'floor ms':>10}{'ratio':>7}  aim")
    for name, sql in QUERIES.items():
        decision = guard(sql, ROLE, contracts=contracts)
        assert decision.allowed, f"{name}: {decision.reason}"
        rows = len(floor(decision.normalised))
        total = _median_ms(lambda: run_guarded(settings, sql, ROLE, user="bench"), args.repeat)
        own = _median_ms(lambda: guard(sql, ROLE, contracts=contracts), args.repeat)
        plain = _median_ms(lambda: floor(decision.normalised), args.repeat)
        aim = AIMS_MS.get(name, TOP10_AIM_MS)
        verdict = "met" if total < aim and own < GUARD_AIM_MS else "MISSED"
        print(f"{name:<24}{rows:>7,}{total:>14.1f}{own:>10.1f}{plain:>10.1f}{total / plain:>7.2f}  "
              f"< {aim:.0f} ms, guard < {GUARD_AIM_MS:.0f} ms: {verdict}")
    con = open_role_database(settings, ROLE)
    try:
        loans = con.execute("SELECT count(*) FROM core.fact_loan").fetchone()[0]
    finally:
        con.close()
    print(f"ratio = `shuku sql --role {ROLE}` (guard + open + run + access log) / the same statement on the same "
          f"read-only database; core.fact_loan holds {loans:,} loans")


if __name__ == "__main__":
    main()
