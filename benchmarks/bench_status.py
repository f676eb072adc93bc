"""`shuku status` on a generated library: wall time against the floor of starting Python with DuckDB.

    .venv/bin/python benchmarks/bench_status.py --scale university --days 7 --work /tmp/status-week
    .venv/bin/python benchmarks/bench_status.py --work /tmp/status-week --repeat 5     # reuse the home

`--work DIR` is the home folder: generated and run with `shuku generate` and `shuku run` when it
holds no warehouse yet, else reused as it is (a university month takes minutes to build). Each
command is timed as a fresh process, as a librarian starts it; the floor is `python -c 'import
duckdb'`, the start-up no command that reads the warehouse can avoid, beside `shuku --help` (the
CLI's own start-up). Wall and CPU time are both given: on a busy machine the CPU time is what the
command costs. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHUKU = Path(sys.executable).parent / "shuku"


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(args: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median wall time and CPU time (user + system) of ``repeat`` runs: on a shared machine the
    CPU time says what the command costs when the wall time waits for the other processes."""
    took, cpu = [], []
    for _ in range(repeat):
        began, used = time.perf_counter(), _cpu()
        done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        took.append(time.perf_counter() - began)
        cpu.append(_cpu() - used)
        if done.returncode not in (0, 1):       # 1: the command ran and reports a failing check
            raise SystemExit(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return round(statistics.median(took), 3), round(statistics.median(cpu), 3)


def _build(home: Path, env: dict[str, str], scale: str, days: int, start: str) -> float:
    began = time.perf_counter()
    for command in (["generate", "--scale", scale, "--days", str(days), "--start", start], ["run"]):
        done = subprocess.run([str(SHUKU), *command], env=env, stdout=subprocess.DEVNULL)
        if done.returncode not in (0, 1):
            raise SystemExit(f"shuku {command[0]} exited {done.returncode} in {home}")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="the home folder (built when it has no warehouse)")
    parser.add_argument("--scale", choices=["tiny", "small", "university"], default="university")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", default="2025-09-01")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--aim", type=float, default=1.0, help="seconds `shuku status` should answer in")
    args = parser.parse_args()
    home = args.work.resolve()
    env = {**os.environ, "SHUKU_HOME": str(home), "COLUMNS": "80"}
    built = None
    if not (home / "warehouse.duckdb").exists():
        built = round(_build(home, env, args.scale, args.days, args.start), 1)
    floor = _timed([sys.executable, "-c", "import duckdb"], env, args.repeat)
    status = _timed([str(SHUKU), "status"], env, args.repeat)
    as_json = _timed([str(SHUKU), "status", "--format", "json"], env, args.repeat)
    help_ = _timed([str(SHUKU), "--help"], env, args.repeat)
    files = sum(1 for _ in (home / "lake").rglob("*.parquet"))
    result = {"home": str(home), "lake_files": files, "built_s": built, "load_average": os.getloadavg()[0],
              "floor_s": floor[0], "floor_cpu_s": floor[1], "shuku_help_s": help_[0], "shuku_help_cpu_s": help_[1],
              "status_s": status[0], "status_cpu_s": status[1], "status_json_s": as_json[0],
              "status_json_cpu_s": as_json[1], "aim_s": args.aim}
    result["above_floor_s"] = round(result["status_s"] - result["floor_s"], 3)
    result["met"] = result["status_s"] < args.aim
    print(json.dumps(result))


if __name__ == "__main__":
    main()
