"""How much the quality checks cost next to the ingest they check, and next to a plain DuckDB floor.

    .venv/bin/python benchmarks/bench_quality.py --scale small --days 14

Generates a library into a temporary home, runs every stage with the checks off
(``SHUKU_QUALITY_CHECKS=off``), then times ``quality.checks.evaluate`` on what was written
(the same call the assets make) and one plain DuckDB query per table computing the same
counts (not null, unique, in set, between, regex) as the floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import dagster as dg  # noqa: E402

from assets.feeds import FEEDS  # noqa: E402
from generator import generate  # noqa: E402
from pipelines.definitions import build_definitions  # noqa: E402
from pipelines.runner import plan, run_stage  # noqa: E402
from quality.checks import evaluate, rows_written  # noqa: E402
from quality.plan import SWITCH  # noqa: E402
from quality.suites import contract_expectations  # noqa: E402
from schemas.model import load_contracts  # noqa: E402
from schemas.vocabulary import DATA_LAYERS, DAY  # noqa: E402
from warehouse.lake.views import compute_connection  # noqa: E402
from warehouse.library import load_library  # noqa: E402
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, Settings  # noqa: E402


def floor_sql(contract, rows: str) -> str | None:
    """One query computing every contract rule's unexpected count, as plain DuckDB aggregates."""
    counts = []
    for rule in contract_expectations(contract):
        col = f'"{rule.column}"' if rule.column else None
        if rule.kind == "not_null":
            counts.append(f"count(*) - count({col})")
        elif rule.kind == "unique":
            cols = ", ".join(f'"{c}"' for c in rule.columns)
            counts.append(f"count(*) - count(DISTINCT ({cols}))")
        elif rule.kind == "in_set":
            listed = ", ".join("'" + v.replace("'", "''") + "'" for v in rule.kwargs["value_set"])
            counts.append(f"count(*) FILTER (WHERE {col} NOT IN ({listed}))")
        elif rule.kind == "between":
            low, high = rule.kwargs["min_value"], rule.kwargs["max_value"]
            tests = ([f"{col} < {low}"] if low is not None else []) + ([f"{col} > {high}"] if high is not None else [])
            counts.append(f"count(*) FILTER (WHERE {' OR '.join(tests)})")
        elif rule.kind == "matches":
            counts.append(f"count(*) FILTER (WHERE NOT regexp_matches({col}, '{rule.kwargs['regex']}'))")
    return f"SELECT {', '.join(counts)} FROM {rows}" if counts else None


def written_keys(settings: Settings, contract) -> list[str] | None:
    """The partitions the run wrote, as the asset passes them to evaluate."""
    part = contract.partition_column
    if part is None:
        return None
    folder = settings.lake / contract.layer / contract.table
    days = sorted(p.name.split("=", 1)[1] for p in folder.glob(f"{part.name}=*"))
    return days if contract.partitioning == DAY else [d[:7] for d in days]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--start", default="2025-09-01")
    args = parser.parse_args()
    library = load_library(DEFAULT_LIBRARY_CONFIG)
    with tempfile.TemporaryDirectory(prefix="shuku-bench-quality-") as tmp:
        settings = Settings(Path(tmp) / "home").ensure()
        os.environ["SHUKU_HOME"] = str(settings.home)
        began = time.perf_counter()
        generate(settings.landing, library, scale=args.scale, seed=7,
                 start=dt.date.fromisoformat(args.start), days=args.days)
        print(f"generated {args.scale}/{args.days} days in {time.perf_counter() - began:.1f} s")

        os.environ[SWITCH] = "off"
        defs = build_definitions(settings)
        instance = dg.DagsterInstance.ephemeral()
        ingest = 0.0
        ingest_cpu = time.process_time()   # CPU time too: the machine may be shared, wall time is noisy
        for stage in plan(settings, None, None, list(FEEDS)):
            began = time.perf_counter()
            result = run_stage(defs, instance, stage)
            took = time.perf_counter() - began
            ingest += took
            print(f"  {stage.label:<40} {took:6.1f} s{'' if result.success else '  FAILED: ' + str(result.error)}")
        del os.environ[SWITCH]
        ingest_cpu = time.process_time() - ingest_cpu
        print(f"ingest + models, checks off: {ingest:.1f} s (CPU {ingest_cpu:.1f} s)")

        began = time.perf_counter()
        import great_expectations  # noqa: F401  (counted apart: paid once per process)
        gx_import = time.perf_counter() - began

        contracts = [c for c in load_contracts().values() if c.layer in DATA_LAYERS]
        con = compute_connection(settings)
        checks = floor = checks_cpu = 0.0
        rows_total, failed = 0, []
        print(f"\n  {'table':<30} {'rows':>10} {'checks':>8} {'floor':>8}")
        for contract in contracts:
            keys = written_keys(settings, contract)
            rows = rows_written(contract, keys)
            count = con.execute(f"SELECT count(*) FROM {rows}").fetchall()[0][0]
            began, began_cpu = time.perf_counter(), time.process_time()
            results = list(evaluate(contract, settings, run_id="bench", partition_keys=keys))
            took_checks = time.perf_counter() - began
            checks_cpu += time.process_time() - began_cpu
            failed += [f"{contract.qualified_name}:{r.check_name}" for r in results if not r.passed]
            sql = floor_sql(contract, rows)
            began = time.perf_counter()
            if sql:
                con.execute(sql).fetchall()
            took_floor = time.perf_counter() - began
            checks, floor, rows_total = checks + took_checks, floor + took_floor, rows_total + count
            print(f"  {contract.qualified_name:<30} {count:>10,} {took_checks:7.2f}s {took_floor:7.3f}s")
        con.close()
        print(f"\nrows checked          {rows_total:,} in {len(contracts)} tables")
        print(f"GX import (once)      {gx_import:.1f} s")
        print(f"all checks            {checks:.1f} s  (GX contract suites + SQL rules, results written)")
        print(f"plain DuckDB floor    {floor:.2f} s  (contract rules only, one query per table)")
        print(f"checks / ingest       {checks / ingest:.2f}   (aim < 0.5; CPU time: {checks_cpu / ingest_cpu:.2f})")
        print(f"(checks + import) / ingest {(checks + gx_import) / ingest:.2f}")
        print(f"checks / floor        {checks / max(floor, 1e-6):.0f}x")
        if failed:
            print(f"failing checks: {', '.join(failed)}")


if __name__ == "__main__":
    main()
