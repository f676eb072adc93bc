"""Peak memory and time of every parser on a 50 MB one-line file and on a large ordinary file,
against a floor: plain DuckDB and polars reading the same file.

Each parser is the one `shuku parse` uses, read as `shuku parse` and `shuku run` read it (a batch
at a time, assets/feeds.parser_batches), in a fresh process whose peak memory (VmHWM) is read
when it ends; `--load` also loads the ordinary file into a staging partition of a fresh home, as
`shuku run` does. The floor is DuckDB counting the file's rows (streaming) and polars reading it
whole as text columns (MARC: pymarc reading its records one by one, keeping none), each in a
fresh process too. The one-line file is the source's header and data with one line of 50 MB
(MARC: a record that never ends); the ordinary file repeats a real sample's or a generated
export's lines up to the size asked for (tests/hostile.py builds both). Ordinary files are
written once into ``--folder`` and kept there for the next run; parsers run one at a time.

    .venv/bin/python benchmarks/bench_hostile.py --ordinary-mb 1024 --folder /tmp/shuku-bench --load
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import hostile  # noqa: E402

# Whole-number columns a repetition raises, so the rows of an ordinary file to be loaded differ.
VARY = {"circulation": "itemnumber", "holds": "reserve_id", "patrons": "cardnumber", "gates": "card",
        "searches": "total"}

FLOOR = """
import json, sys
from pathlib import Path
source, path, how = sys.argv[1], sys.argv[2], sys.argv[3]
def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) / 1024
if how == "duckdb":
    import duckdb
    before = peak_mb()
    sep = chr(9) if source == "counter" else (chr(1) if source == "ezproxy" else ",")
    rows = duckdb.sql(f"select count(*) from read_csv('{path}', all_varchar = true, header = false, delim = '{sep}', "
                      "quote = '', escape = '', null_padding = true, strict_mode = false, ignore_errors = true)").fetchall()[0][0]
elif how == "polars":
    import polars as pl
    before = peak_mb()
    frame = pl.read_csv(path, has_header=False, infer_schema=False, quote_char=None, truncate_ragged_lines=True,
                        separator="\\t" if source == "counter" else ("\\x00" if source == "ezproxy" else ","))
    rows = frame.height
else:
    from pymarc import MARCReader
    before = peak_mb()
    with open(path, "rb") as marc:
        rows = sum(1 for _ in MARCReader(marc, to_unicode=True, force_utf8=False, utf8_handling="replace"))
print(json.dumps({"rows": rows, "imports_mb": before, "peak_mb": peak_mb()}))
"""


def timed(source: str, path: Path, script: str = hostile.PROBE, *extra: str) -> tuple[dict, float]:
    began = time.perf_counter()
    if script in (hostile.PROBE, hostile.LOAD):
        outcome = hostile.probe(source, path, script)
    else:
        done = subprocess.run([sys.executable, "-c", script, source, str(path), *extra], cwd=ROOT, capture_output=True,
                              text=True, timeout=7200, check=True)
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome, time.perf_counter() - began


def what(outcome: dict) -> str:
    if "error" in outcome:
        return "refused: " + outcome["error"].split(": ", 1)[-1][:60]
    rejected = ", ".join(f"{k} {v:,}" for k, v in sorted(outcome.get("rejected", {}).items()))
    return f"{outcome['rows']:,} rows" + (f"; {rejected}" if rejected else "")


def ordinary(source: str, folder: Path, size_mb: int, vary: bool) -> Path:
    """The ordinary file of ``size_mb``, written once into ``folder`` and kept for the next run."""
    path = folder / f"{source}-{size_mb}mb{'-varied' if vary else ''}" / hostile.NAMES[source]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        hostile.write_ordinary(source, path.with_suffix(".part"), size_mb << 20, VARY.get(source) if vary else None)
        path.with_suffix(".part").rename(path)
    return path


def row(source: str, kind: str, path: Path, outcome: dict, seconds: float) -> None:
    extra = outcome["peak_mb"] - outcome["imports_mb"]
    print(f"| {source} | {kind} | {path.stat().st_size / (1 << 20):,.0f} | {what(outcome)} | {seconds:.1f} | "
          f"{outcome['peak_mb']:,.0f} | {extra:,.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--line-mb", type=int, default=50)
    parser.add_argument("--ordinary-mb", type=int, default=1024)
    parser.add_argument("--sources", default=",".join(hostile.NAMES))
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "shuku-bench")
    parser.add_argument("--load", action="store_true", help="also load each ordinary file (CSV feeds and MARC)")
    parser.add_argument("--no-line", action="store_true", help="only the ordinary files")
    args = parser.parse_args()
    print("| parser | file | MB | outcome | seconds | peak MB | over imports MB |")
    print("|---|---|---:|---|---:|---:|---:|")
    for source in args.sources.split(","):
        if not args.no_line:
            with tempfile.TemporaryDirectory(prefix="shuku-hostile-") as folder:
                path = Path(folder) / "landing" / source / hostile.NAMES[source]
                path.parent.mkdir(parents=True)
                path.write_bytes(hostile.huge_line(source, args.line_mb << 20))
                row(source, "one line", path, *timed(source, path))
        path = ordinary(source, args.folder, args.ordinary_mb, vary=False)
        row(source, "ordinary: parse", path, *timed(source, path))
        for how in ("pymarc",) if source == "marc" else ("duckdb", "polars"):
            row(source, f"ordinary: floor, {how}", path, *timed(source, path, FLOOR, how))
        if args.load and source not in ("counter", "ezproxy"):
            path = ordinary(source, args.folder, args.ordinary_mb, vary=source in VARY)
            row(source, "ordinary: load" + (" (rows varied)" if source in VARY else ""), path,
                *timed(source, path, hostile.LOAD))


if __name__ == "__main__":
    main()
