"""EZproxy lines per second, against floors measured in the same run on the same files.

    .venv/bin/python benchmarks/bench_ezproxy.py --lines 10000000
    .venv/bin/python benchmarks/bench_ezproxy.py --lines 500000          # a quick look

Builds a log of --lines lines from the generator's own EZproxy days (default LogFormat, with
its defects: malformed, truncated and bad-timestamp lines), repeated to size and split into
daily files of --per-day lines (a year's logs arrive a day at a time). Then, each in its own
process, times:
  shuku   the whole ingest of every day: parse, type, pseudonymise, platform, deduplicate,
          conform to the contract, write Parquet, quarantine, ingest log;
  polars  one regular expression into the nine fields (`str.extract_groups`), to Parquet;
  duckdb  the same with `regexp_extract`, to Parquet.
Prints lines/s, peak memory, the ratios to the floors, and the aim: 100 × ezPAARSE's
documented 3,019 lines/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_ingest import EZPROXY_REGEX, _peak_mb  # noqa: E402

EZPAARSE_LINES_PER_S = 3_019
_REQUEST_URL = re.compile(r'(?<=")([A-Z]+ \S+) ')
START = dt.date(2025, 9, 1)


def build_log(home: Path, lines: int, per_day: int, seed: int) -> int:
    """Write ``lines`` EZproxy lines as daily files under the home's landing folder; returns the file count."""
    from generator import generate
    from warehouse.library import load_library
    from warehouse.settings import Settings

    settings = Settings(home).ensure()
    sample = Path(tempfile.mkdtemp(prefix="ezproxy-sample-"))
    generate(sample, load_library(settings.library_config), scale="small", seed=seed, start=START, days=7)
    source = []
    for path in sorted((sample / "ezproxy").glob("*.log.gz")):
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
        source += [line for line in text.split("\n") if line]
    block = "\n".join(source) + "\n"
    folder = settings.landing / "ezproxy"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*"):
        old.unlink()
    written, day = 0, 0
    while written < lines:
        # Every line moved to the file's day (a line of another day is quarantined, rightly), and
        # each repeat of the sample made distinct by a query parameter (else it is a duplicate) that
        # leaves the platform rules seeing the platforms' own paths.
        date = START + dt.timedelta(days=day)
        dated = re.sub(r"\[\d\d/[A-Za-z]{3}/\d{4}:", f"[{date:%d/%b/%Y}:", block)
        count = min(per_day, lines - written)
        copies = [dated if k == 0 else _REQUEST_URL.sub(lambda m, k=k: f"{m[1]}{'&' if '?' in m[1] else '?'}copy={k} ", dated)
                  for k in range(-(-count // len(source)))]
        body = "\n".join("".join(copies).split("\n")[:count]) + "\n"
        (folder / f"ezproxy_{date}.log").write_text(body, encoding="utf-8")
        written, day = written + count, day + 1
    return day


def measure_shuku(home: Path) -> dict:
    from assets.feeds import feed_named
    from assets.ingest import ingest_partition
    from schemas.model import contract_for
    from warehouse.library import load_library
    from warehouse.pseudonym import Pseudonymiser
    from warehouse.settings import Settings

    settings = Settings(home)
    library = load_library(settings.library_config)
    pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
    feed = feed_named("ezproxy")
    contract_for("staging.ezproxy_access"), contract_for("quarantine.ezproxy"), contract_for("meta.ingest_log")
    keys = sorted({feed.key_of(p) for p in feed.files(settings.landing)})
    began = time.perf_counter()
    lines = loaded = 0
    for key in keys:
        outcome = ingest_partition(feed, key, settings, library, pseudonymiser, "bench")
        lines += sum(sum(f.rows_read.values()) for f in outcome.files)
        loaded += sum(sum(f.rows_loaded.values()) for f in outcome.files)
    return {"seconds": time.perf_counter() - began, "lines": lines, "loaded": loaded, "peak_mb": _peak_mb()}


def _files(home: Path) -> list[Path]:
    return sorted((home / "landing" / "ezproxy").glob("*.log"))


def measure_polars(home: Path) -> dict:
    import polars as pl

    out = Path(tempfile.mkdtemp(prefix="floor-polars-"))
    began, lines = time.perf_counter(), 0
    for path in _files(home):
        raw = pl.read_csv(path, has_header=False, separator="\x01", quote_char=None, new_columns=["line"],
                          schema_overrides={"line": pl.Utf8})
        frame = raw.select(pl.col("line").str.extract_groups(EZPROXY_REGEX).alias("g")).unnest("g")
        frame.write_parquet(out / f"{path.stem}.parquet", compression="zstd")
        lines += raw.height
    return {"seconds": time.perf_counter() - began, "lines": lines, "peak_mb": _peak_mb()}


def measure_duckdb(home: Path) -> dict:
    import duckdb

    out = Path(tempfile.mkdtemp(prefix="floor-duckdb-"))
    con = duckdb.connect()
    began, lines = time.perf_counter(), 0
    groups = ", ".join(f"regexp_extract(column0, '{EZPROXY_REGEX}', {i}) AS g{i}" for i in range(1, 9))
    for path in _files(home):
        target = out / f"{path.stem}.parquet"
        con.execute(f"COPY (SELECT {groups} FROM read_csv('{path}', header = false, delim = '\\x01', quote = '', "
                    f"escape = '', columns = {{'column0': 'VARCHAR'}})) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        lines += con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()[0]
    return {"seconds": time.perf_counter() - began, "lines": lines, "peak_mb": _peak_mb()}


MEASURES = {"shuku": measure_shuku, "polars": measure_polars, "duckdb": measure_duckdb}


def _in_child(kind: str, home: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--home", str(home)],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--per-day", type=int, default=1_000_000, help="lines per daily file")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--home", type=Path, help="home folder to build the log in (default: a temporary one)")
    parser.add_argument("--floors", default="polars,duckdb", help="which floors to measure, comma-separated")
    parser.add_argument("--child", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(MEASURES[args.child](args.home)))
        return

    home = args.home or Path(tempfile.mkdtemp(prefix="shuku-bench-ezproxy-")) / "home"
    began = time.perf_counter()
    days = build_log(home, args.lines, args.per_day, args.seed)
    size = sum(p.stat().st_size for p in _files(home)) / 1e6
    print(f"built {args.lines:,} lines in {days} daily files ({size:,.0f} MB) in {time.perf_counter() - began:.1f} s "
          f"→ {home}")
    results = {kind: _in_child(kind, home) for kind in ["shuku", *args.floors.split(",")]}
    print(f"{'':<8}{'lines':>12}{'seconds':>9}{'lines/s':>12}{'peak MB':>9}{'ratio':>7}")
    ours = results["shuku"]
    for kind, r in results.items():
        ratio = ours["seconds"] / r["seconds"]
        print(f"{kind:<8}{r['lines']:>12,}{r['seconds']:>9.1f}{r['lines'] / r['seconds']:>12,.0f}"
              f"{r['peak_mb']:>9.0f}{ratio:>7.2f}")
    rate = ours["lines"] / ours["seconds"]
    print(f"ratio = Shuku's whole ingest time / that floor's time on the same files (lower is better); "
          f"Shuku loaded {ours['loaded']:,} accesses")
    print(f"aim: ≥ {100 * EZPAARSE_LINES_PER_S:,} lines/s (100 × ezPAARSE's 3,019); measured {rate:,.0f} = "
          f"{rate / EZPAARSE_LINES_PER_S:.0f} × ezPAARSE")


if __name__ == "__main__":
    main()
