"""`shuku status` on a generated library: wall time against the floor of starting Python with DuckDB.

    .venv/bin/python benchmarks/bench_status.py --scale university --days 7 --work /tmp/status-week
    .venv/bin/python benchmarks/bench_status.py --work /tmp/status-week --repeat 5     # reuse the home

`--work DIR` is the home folder: generated and run with `shuku generate` and `shuku run` when it
holds no warehouse yet, else reused as it is (a university month takes minutes to build). Each
command is timed as a fresh process, as a librarian starts it; the floor is `python -c 'import
duckdb'`, the start-up no command that reads the warehouse can avoid. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHUKU = Path(sys.executable).parent / "shuku"


def _timed(args: list[str], env: dict[str, str], repeat: int) -> list[float]:
    took = []
    for _ in range(repeat):
        began = time.perf_counter()
        done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        took.append(time.perf_counter() - began)
        if done.returncode not in (0, 1):       # 1: the command ran and reports a failing check
            raise SystemExit(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return took


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
    files = sum(1 for _ in (home / "lake").rglob("*.parquet"))
    result = {"home": str(home), "lake_files": files, "built_s": built,
              "floor_s": round(statistics.median(floor), 3), "status_s": round(statistics.median(status), 3),
              "status_json_s": round(statistics.median(as_json), 3), "aim_s": args.aim}
    result["above_floor_s"] = round(result["status_s"] - result["floor_s"], 3)
    result["met"] = result["status_s"] < args.aim
    print(json.dumps(result))


if __name__ == "__main__":
    main()
