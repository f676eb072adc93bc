"""The whole pipeline on a generated library: wall time and peak memory per stage, the share of
checks and lineage, and a nightly incremental run (one new day on top of the rest).

    .venv/bin/python benchmarks/bench_pipeline.py --scale small --days 28
    .venv/bin/python benchmarks/bench_pipeline.py --scale university --days 365   # the issue's full year

Stages are the runs `shuku run` makes (snapshots, daily feeds as one partition range, COUNTER
months, core + marts + role databases), executed in this process on an ephemeral Dagster
instance. Peak memory is this process's max RSS after each stage. Checks are timed by running
the same stages again on a copy with SHUKU_QUALITY_CHECKS=off in a child process; lineage time is
what building and sending the events took (START/COMPLETE/FAIL), summed over the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


LINEAGE_SECONDS = [0.0]


def _time_lineage() -> None:
    """Count the time spent building and sending lineage events (wraps the two calls observe() makes)."""
    import lineage.observe as observe
    from lineage.transport import Emitter

    def timed(function):
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                LINEAGE_SECONDS[0] += time.perf_counter() - began
        return wrapper

    observe.build_event = timed(observe.build_event)
    Emitter.emit = timed(Emitter.emit)


def run_stages(home: Path, start: dt.date | None = None, end: dt.date | None = None) -> list[dict]:
    """Run every stage once; returns one dict per stage (label, seconds, peak MB, lineage seconds)."""
    import dagster as dg

    from assets.feeds import FEEDS
    from pipelines.definitions import build_definitions
    from pipelines.runner import plan, run_stage
    from warehouse.settings import Settings

    settings = Settings(home)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    timings = []
    for stage in plan(settings, start, end, list(FEEDS)):
        began = time.perf_counter()
        result = run_stage(defs, instance, stage)
        if not result.success:
            raise SystemExit(f"stage {stage.label} failed: {result.error}")
        timings.append({"stage": stage.label, "seconds": time.perf_counter() - began, "peak_mb": _peak_mb(),
                        "lineage_seconds": LINEAGE_SECONDS[0]})
        LINEAGE_SECONDS[0] = 0.0
    return timings


def _child(home: Path, checks: bool, start: str | None, end: str | None) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SHUKU_QUALITY_CHECKS": "on" if checks else "off"}
    args = [sys.executable, __file__, "--child", "--home", str(home)]
    if start:
        args += ["--from", start, "--to", end]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "university"])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--from", dest="start", help=argparse.SUPPRESS)
    parser.add_argument("--to", dest="end", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        start = dt.date.fromisoformat(args.start) if args.start else None
        end = dt.date.fromisoformat(args.end) if args.end else None
        _time_lineage()
        print(json.dumps(run_stages(args.home, start, end)))
        return

    from generator import generate
    from warehouse.library import load_library
    from warehouse.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="shuku-bench-pipeline-"))
    library = load_library(Settings(work / "x").library_config)
    first = dt.date(2025, 9, 1)
    began = time.perf_counter()
    # One more day than measured: the last day is the nightly increment.
    full = Settings(work / "generated").ensure()
    generate(full.landing, library, scale=args.scale, seed=args.seed, start=first, days=args.days + 1)
    print(f"generated {args.scale}, {args.days + 1} days in {time.perf_counter() - began:.0f} s")
    last = first + dt.timedelta(days=args.days)
    base = Settings(work / "home").ensure()
    # Snapshot exports (patrons, catalogue) are dated the last day too; they belong to the base.
    shutil.copytree(full.landing, base.landing, dirs_exist_ok=True,
                    ignore=lambda folder, names: [n for n in names if last.isoformat() in n
                                                  and not n.startswith(("patrons_", "catalogue_"))])
    no_checks = Settings(work / "home-no-checks").ensure()
    shutil.copytree(base.landing, no_checks.landing, dirs_exist_ok=True)

    with_checks = _child(base.home, True, None, None)
    without = _child(no_checks.home, False, None, None)
    total = sum(s["seconds"] for s in with_checks)
    print(f"\n{'stage':<40}{'seconds':>9}{'no checks':>11}{'peak MB':>9}")
    for a, b in zip(with_checks, without):
        print(f"{a['stage']:<40}{a['seconds']:>9.1f}{b['seconds']:>11.1f}{a['peak_mb']:>9.0f}")
    unchecked = sum(s["seconds"] for s in without)
    checks = total - unchecked
    ingest = sum(s["seconds"] for s in without if not s["stage"].startswith("core"))
    lineage = sum(s["lineage_seconds"] for s in with_checks)
    print(f"{'whole run':<40}{total:>9.1f}{'':>11}{max(s['peak_mb'] for s in with_checks):>9.0f}")
    print(f"checks: {checks:.1f} s = {checks / ingest:.2f} of ingest (aim < 0.5), "
          f"{checks / unchecked:.2f} of the run without checks; "
          f"lineage: {lineage:.2f} s = {100 * lineage / total:.1f} % of the run (aim < 2 %)")

    # Nightly: the new day's files arrive; load that day, rebuild core and marts.
    for path in full.landing.rglob(f"*{last.isoformat()}*"):
        if path.name.startswith(("patrons_", "catalogue_")):
            continue
        target = base.landing / path.relative_to(full.landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    nightly = _child(base.home, True, last.isoformat(), last.isoformat())
    print(f"nightly increment ({last}): {sum(s['seconds'] for s in nightly):.1f} s (aim < 60 s) — "
          + ", ".join(f"{s['stage']} {s['seconds']:.1f} s" for s in nightly))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
