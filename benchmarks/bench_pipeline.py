"""The whole pipeline on a generated library: wall time and peak memory per stage, the share of
checks and lineage, and a nightly incremental run (one new day on top of the rest).

    .venv/bin/python benchmarks/bench_pipeline.py --scale small --days 28
    .venv/bin/python benchmarks/bench_pipeline.py --scale university --days 365 --work /tmp/year --months 1,3

Stages are the runs `shuku run` makes (snapshots, daily feeds as one partition range, COUNTER
months, core + marts + role databases), executed in a child process on an ephemeral Dagster
instance. Peak memory is the child's max RSS after each stage. Checks are timed where they run
(`quality.checks.run_checks`), lineage as what building and sending the events took
(START/COMPLETE/FAIL), both summed per stage; `--unchecked` also runs the stages again on a copy
with SHUKU_QUALITY_CHECKS=off, the end-to-end cost of the checks (Dagster's check steps included).
The slowest steps of each stage come from the run's Dagster event log.

`--work DIR` keeps the generated library there and reuses it when scale, seed and days match
(generating a university year takes minutes). `--months 1,3` first runs the first month and the
first three months alone, each in a fresh process and home, then prints their peak memory beside
the whole range's (a year: the 12-month point): flat if no stage holds the whole range at once.
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


SPENT = {"lineage": 0.0, "checks": 0.0}


def _timed(function, bucket: str):
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[bucket] += time.perf_counter() - began
    return wrapper


def _time_lineage_and_checks() -> None:
    """Count the time spent building and sending lineage events (the two calls observe() makes)
    and running checks (every asset calls `quality.checks.evaluate`, which calls `run_checks`)."""
    import lineage.observe as observe
    import quality.checks as checks
    from lineage.transport import Emitter

    observe.build_event = _timed(observe.build_event, "lineage")
    Emitter.emit = _timed(Emitter.emit, "lineage")
    checks.run_checks = _timed(checks.run_checks, "checks")


def _slowest_steps(instance, run_id: str, count: int = 6) -> list[tuple[str, float]]:
    """The run's steps that took longest, from its STEP_START / STEP_SUCCESS events."""
    import dagster as dg

    began, took = {}, {}
    for record in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}):
        event = record.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_START:
            began[event.step_key] = record.timestamp
        elif event.step_key in began:
            took[event.step_key] = record.timestamp - began[event.step_key]
    return sorted(took.items(), key=lambda kv: -kv[1])[:count]


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
                        "lineage_seconds": SPENT["lineage"], "checks_seconds": SPENT["checks"],
                        "steps": _slowest_steps(instance, result.run_id)})
        SPENT.update(lineage=0.0, checks=0.0)
    return timings


def _child(home: Path, checks: bool, start: str | None, end: str | None) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SHUKU_QUALITY_CHECKS": "on" if checks else "off"}
    args = [sys.executable, __file__, "--child", "--home", str(home)]
    if start:
        args += ["--from", start, "--to", end]
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the run in {home} failed:\n{out.stderr[-3000:]}{out.stdout[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _link_tree(source: Path, target: Path, keep) -> None:
    """Hard-link the landing files for which ``keep(name)`` holds (the pipeline only reads them)."""
    for path in source.rglob("*"):
        if path.is_file() and keep(path.name):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                os.link(path, dest)


def _generated(work: Path, scale: str, seed: int, days: int, first: dt.date):
    """The generated library under ``work``, made unless one with the same arguments is there."""
    from generator import generate
    from warehouse.library import load_library
    from warehouse.settings import Settings

    full = Settings(work / "generated")
    stamp = work / "generated.json"
    wanted = {"scale": scale, "seed": seed, "days": days, "start": first.isoformat()}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        print(f"reusing the library generated in {full.landing}")
        return full
    shutil.rmtree(full.home, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    full.ensure()
    began = time.perf_counter()
    generate(full.landing, load_library(Settings(work / "x").library_config), scale=scale, seed=seed, start=first,
             days=days)
    stamp.write_text(json.dumps(wanted))
    print(f"generated {scale}, {days} days in {time.perf_counter() - began:.0f} s")
    return full


def _print_stages(runs: list[dict], without: list[dict] | None = None) -> None:
    print(f"\n{'stage':<40}{'seconds':>9}{'checks':>8}{'lineage':>9}{'peak MB':>9}"
          + (f"{'no checks':>11}" if without else ""))
    for i, a in enumerate(runs):
        print(f"{a['stage']:<40}{a['seconds']:>9.1f}{a['checks_seconds']:>8.1f}{a['lineage_seconds']:>9.2f}"
              f"{a['peak_mb']:>9.0f}" + (f"{without[i]['seconds']:>11.1f}" if without else ""))
        print("    slowest steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in a["steps"]))


def memory_curve(work: Path, full, first: dt.date, months: list[int]) -> list[tuple]:
    """The first N months run alone, each in a fresh home and process: (label, seconds, peak MB, stages)."""
    from warehouse.settings import Settings

    rows = []
    for n in months:
        month_after = dt.date(first.year + (first.month - 1 + n) // 12, (first.month - 1 + n) % 12 + 1, 1)
        last = month_after - dt.timedelta(days=1)
        days = {(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
        home = Settings(work / f"home-{n}-months")
        shutil.rmtree(home.home, ignore_errors=True)
        home.ensure()
        # The snapshots (dated the generated range's last day), the months' daily files and COUNTER sets.
        _link_tree(full.landing, home.landing,
                   lambda name: name.startswith(("patrons_", "catalogue_")) or any(d in name for d in days))
        for folder in (full.landing / "counter").iterdir():
            if folder.is_dir() and folder.name <= last.strftime("%Y-%m"):
                _link_tree(folder, home.landing / "counter" / folder.name, lambda name: True)
        runs = _child(home.home, True, None, None)
        rows.append((f"{n} month(s) to {last}", sum(s["seconds"] for s in runs), max(s["peak_mb"] for s in runs), runs))
        print(f"{rows[-1][0]}: {rows[-1][1]:.0f} s, peak {rows[-1][2]:,.0f} MB")
        shutil.rmtree(home.home, ignore_errors=True)
    return rows


def _print_curve(rows: list[tuple]) -> None:
    print(f"\n{'range':<34}{'seconds':>9}{'peak MB':>9}   peak after each stage (MB)")
    for label, total, peak, runs in rows:
        print(f"{label:<34}{total:>9.0f}{peak:>9.0f}   "
              + ", ".join(f"{s['stage'].split(' 20')[0]} {s['peak_mb']:.0f}" for s in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "university"])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, help="keep the generated library (and the homes) here")
    parser.add_argument("--months", help="comma-separated month counts for the memory curve, e.g. 1,3")
    parser.add_argument("--unchecked", action="store_true", help="also run every stage again with the checks off")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--from", dest="start", help=argparse.SUPPRESS)
    parser.add_argument("--to", dest="end", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        start = dt.date.fromisoformat(args.start) if args.start else None
        end = dt.date.fromisoformat(args.end) if args.end else None
        _time_lineage_and_checks()
        print(json.dumps(run_stages(args.home, start, end)))
        return

    from warehouse.settings import Settings

    work = args.work or Path(tempfile.mkdtemp(prefix="shuku-bench-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    first = dt.date(2025, 9, 1)
    # One more day than measured: the last day is the nightly increment.
    full = _generated(work, args.scale, args.seed, args.days + 1, first)
    curve = memory_curve(work, full, first, [int(m) for m in args.months.split(",")]) if args.months else []

    last = first + dt.timedelta(days=args.days)
    base = Settings(work / "home")
    shutil.rmtree(base.home, ignore_errors=True)
    base.ensure()
    # Snapshot exports (patrons, catalogue) are dated the last day too; they belong to the base.
    _link_tree(full.landing, base.landing,
               lambda name: last.isoformat() not in name or name.startswith(("patrons_", "catalogue_")))
    with_checks = _child(base.home, True, None, None)
    without = None
    if args.unchecked:
        no_checks = Settings(work / "home-no-checks")
        shutil.rmtree(no_checks.home, ignore_errors=True)
        no_checks.ensure()
        _link_tree(base.landing, no_checks.landing, lambda name: True)
        without = _child(no_checks.home, False, None, None)
        shutil.rmtree(no_checks.home, ignore_errors=True)
    _print_stages(with_checks, without)
    total = sum(s["seconds"] for s in with_checks)
    checks = sum(s["checks_seconds"] for s in with_checks)
    lineage = sum(s["lineage_seconds"] for s in with_checks)
    ingest = sum(s["seconds"] - s["checks_seconds"] for s in with_checks if not s["stage"].startswith("core"))
    print(f"{'whole run':<40}{total:>9.1f}{checks:>8.1f}{lineage:>9.2f}{max(s['peak_mb'] for s in with_checks):>9.0f}")
    print(f"checks: {checks:.1f} s = {checks / ingest:.2f} of ingest (aim < 0.5), {100 * checks / total:.0f} % of the "
          f"run; lineage: {lineage:.2f} s = {100 * lineage / total:.1f} % of the run (aim < 2 %)")
    if curve:
        _print_curve(curve + [(f"{args.days} days (the run above)", total, max(s["peak_mb"] for s in with_checks),
                               with_checks)])
    if without:
        unchecked = sum(s["seconds"] for s in without)
        unchecked_ingest = sum(s["seconds"] for s in without if not s["stage"].startswith("core"))
        print(f"end to end, the checks add {total - unchecked:.1f} s = {(total - unchecked) / unchecked_ingest:.2f} "
              "of the ingest run without them")

    # Nightly: the new day's files arrive; load that day, rebuild core and marts.
    _link_tree(full.landing, base.landing,
               lambda name: last.isoformat() in name and not name.startswith(("patrons_", "catalogue_")))
    nightly = _child(base.home, True, last.isoformat(), last.isoformat())
    print(f"\nnightly increment ({last}): {sum(s['seconds'] for s in nightly):.1f} s (aim < 60 s), "
          f"peak {max(s['peak_mb'] for s in nightly):,.0f} MB")
    _print_stages(nightly)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
