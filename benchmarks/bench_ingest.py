"""Ingest speed per feed against the floor: plain DuckDB reading the same landing files into Parquet.

    .venv/bin/python benchmarks/bench_ingest.py --scale small --days 28
    .venv/bin/python benchmarks/bench_ingest.py --scale university --days 7

Generates a synthetic library into a temporary home folder (or uses --home), then for each
daily feed times Shuku's whole ingest of every partition (parse, type, pseudonymise,
deduplicate, conform, write Parquet, quarantine, ingest log) and, on the same files, one
DuckDB `COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)` per partition — for
EZproxy, DuckDB's `regexp_extract` into the same fields. Each measurement runs in its own
process so its peak memory (max RSS) is its own. Prints rows/s and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FEEDS_MEASURED = ("circulation", "searches", "turnstile", "gate_counter", "ezproxy")
EZPROXY_REGEX = r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+)[^"]*" (\d{3}|-) (\d+|-)$'


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_shuku(home: Path, feed_name: str) -> dict:
    from assets.feeds import feed_named
    from assets.ingest import ingest_partition
    from schemas.model import contract_for
    from warehouse.library import load_library
    from warehouse.pseudonym import Pseudonymiser
    from warehouse.settings import Settings

    settings = Settings(home)
    library = load_library(settings.library_config)
    pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
    feed = feed_named(feed_name)
    keys = sorted({feed.key_of(p) for p in feed.files(settings.landing)})
    for table in feed.tables:   # read and validate the contracts once, as a run does, before timing
        contract_for(f"staging.{table}")
    contract_for(f"quarantine.{feed.source}"), contract_for("meta.ingest_log")
    began = time.perf_counter()
    rows = 0
    for key in keys:
        outcome = ingest_partition(feed, key, settings, library, pseudonymiser, "bench")
        rows += sum(sum(f.rows_read.values()) for f in outcome.files)
    return {"seconds": time.perf_counter() - began, "rows": rows, "peak_mb": _peak_mb()}


def measure_floor(home: Path, feed_name: str) -> dict:
    import duckdb

    from assets.feeds import feed_named
    from warehouse.settings import Settings

    settings = Settings(home)
    feed = feed_named(feed_name)
    out = Path(tempfile.mkdtemp(prefix="floor-"))
    con = duckdb.connect()
    keys = sorted({feed.key_of(p) for p in feed.files(settings.landing)})
    began = time.perf_counter()
    rows = 0
    for key in keys:
        files = [str(p) for p in feed.files_for(settings.landing, key)]
        target = out / f"{key}.parquet"
        if feed_name == "ezproxy":
            groups = ", ".join(f"regexp_extract(column0, '{EZPROXY_REGEX}', {i}) AS g{i}" for i in range(1, 9))
            source = (f"SELECT {groups} FROM read_csv({files!r}, header = false, delim = '\\x01', "
                      "quote = '', escape = '', columns = {'column0': 'VARCHAR'})")
        else:
            source = f"SELECT * FROM read_csv({files!r}, header = true, all_varchar = false, ignore_errors = true)"
        con.execute(f"COPY ({source}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        rows += con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
    return {"seconds": time.perf_counter() - began, "rows": rows, "peak_mb": _peak_mb()}


def _in_child(kind: str, home: Path, feed: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--home", str(home), "--feed", feed],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "university"])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--home", type=Path, help="use this home folder's landing files instead of generating")
    parser.add_argument("--child", choices=["shuku", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--feed", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = (measure_shuku if args.child == "shuku" else measure_floor)(args.home, args.feed)
        print(json.dumps(result))
        return

    from generator import generate
    from warehouse.library import load_library
    from warehouse.settings import Settings

    home = args.home or Path(tempfile.mkdtemp(prefix="shuku-bench-")) / "home"
    settings = Settings(home).ensure()
    if not args.home:
        began = time.perf_counter()
        generate(settings.landing, load_library(settings.library_config), scale=args.scale, seed=args.seed,
                 start=dt.date(2025, 9, 1), days=args.days)
        print(f"generated {args.scale}, {args.days} days in {time.perf_counter() - began:.1f} s → {home}")
    print(f"{'feed':<14}{'rows':>11}{'shuku s':>9}{'rows/s':>11}{'peak MB':>9}{'floor s':>9}{'floor MB':>9}{'ratio':>7}")
    for feed in FEEDS_MEASURED:
        ours = _in_child("shuku", home, feed)
        floor = _in_child("floor", home, feed)
        ratio = ours["seconds"] / floor["seconds"] if floor["seconds"] else float("nan")
        print(f"{feed:<14}{ours['rows']:>11,}{ours['seconds']:>9.2f}{ours['rows'] / ours['seconds']:>11,.0f}"
              f"{ours['peak_mb']:>9.0f}{floor['seconds']:>9.2f}{floor['peak_mb']:>9.0f}{ratio:>7.2f}")
    print("ratio = Shuku's full ingest time / DuckDB reading the same files into Parquet (lower is better)")


if __name__ == "__main__":
    main()
