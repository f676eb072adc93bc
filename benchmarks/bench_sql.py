"""How long an analyst waits for `shuku sql`: the whole command, start-up included, against the
floor of a bare Python process that imports DuckDB, opens the same role database and runs the
same statement; and `shuku shell`, one session answering query after query.

    .venv/bin/python benchmarks/bench_sql.py --home var          # an existing, published home
    .venv/bin/python benchmarks/bench_sql.py --scale tiny --days 2

Each command runs --repeat times, medians (wall clock and CPU of the child process) printed.
Aim: `shuku sql --role analyst "SELECT 1"` well under a second; a query in `shuku shell` under 0.1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROLE = "analyst"
QUERIES = {
    "SELECT 1": "SELECT 1",
    "top 10 busiest hours": "SELECT event_date, event_hour, zone_code, utilisation FROM marts.space_utilisation "
                            "ORDER BY utilisation DESC, event_date, event_hour LIMIT 10",
    "SHOW TABLES": "SHOW TABLES",
}
AIM_S, SHELL_AIM_S = 1.0, 0.1
SHUKU = Path(sys.executable).parent / "shuku"


def _timed(args: list[str], env: dict, stdin: str | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process; fails the benchmark when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(args, env=env, input=stdin, capture_output=True, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}… failed: {done.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def _home(args) -> Path:
    if args.home:
        return args.home.resolve()
    from benchmarks.bench_pipeline import run_stages
    from generator import generate
    from warehouse.access import publish
    from warehouse.library import load_library
    from warehouse.settings import Settings

    settings = Settings(Path(tempfile.mkdtemp(prefix="shuku-bench-sql-")) / "home").ensure()
    generate(settings.landing, load_library(settings.library_config), scale=args.scale, seed=42,
             start=dt.date(2025, 9, 1), days=args.days)
    run_stages(settings.home)
    publish(settings)
    return settings.home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--home", type=Path, help="an existing home whose role databases are published")
    args = parser.parse_args()
    home = _home(args)
    env = {**os.environ, "SHUKU_HOME": str(home)}
    database = home / "access" / f"{ROLE}.duckdb"
    print(f"load average {os.getloadavg()[0]:.1f}; {args.repeat} runs each, medians")
    print(f"{'query':<22}{'shuku sql s':>12}{'cpu s':>7}{'floor s':>9}{'cpu s':>7}{'ratio':>7}  aim")
    for name, sql in QUERIES.items():
        floor_sql = "SELECT 1" if name != "top 10 busiest hours" else sql
        _timed([str(SHUKU), "sql", "--role", ROLE, "--format", "csv", sql], env)        # the cache warm
        shuku = _median([_timed([str(SHUKU), "sql", "--role", ROLE, "--format", "csv", sql], env)
                         for _ in range(args.repeat)])
        floor = _median([_timed([sys.executable, "-c", "import duckdb; duckdb.connect(" + repr(str(database)) +
                                 ", read_only=True).sql(" + repr(floor_sql) + ").fetchall()"], env)
                         for _ in range(args.repeat)])
        verdict = "met" if shuku[0] < AIM_S else "MISSED"
        print(f"{name:<22}{shuku[0]:>12.2f}{shuku[1]:>7.2f}{floor[0]:>9.2f}{floor[1]:>7.2f}"
              f"{shuku[0] / floor[0]:>7.2f}  < {AIM_S:.0f} s: {verdict}")
    queries = [QUERIES["top 10 busiest hours"]] * 20
    one = _median([_timed([str(SHUKU), "shell", "--role", ROLE, "--format", "csv"], env, queries[0] + "\n")
                   for _ in range(3)])
    many = _median([_timed([str(SHUKU), "shell", "--role", ROLE, "--format", "csv"], env, "\n".join(queries) + "\n")
                    for _ in range(3)])
    each = (many[0] - one[0]) / (len(queries) - 1)
    print(f"shuku shell: {one[0]:.2f} s to start and answer one query, then {each:.3f} s a query "
          f"(aim < {SHELL_AIM_S} s: {'met' if each < SHELL_AIM_S else 'MISSED'})")
    print("floor = a bare `python -c` importing duckdb, opening the role's database read-only and running "
          "the statement (SHOW TABLES: SELECT 1); shuku sql adds the guard, the access log and its start-up.")


if __name__ == "__main__":
    main()
