"""Peak memory and time of every parser on a 50 MB one-line file and on a large ordinary file.

Each file is written into a temporary folder (removed afterwards) and parsed by the parser
`shuku parse` uses, in a fresh process whose peak memory (ru_maxrss) is read when it ends.
The one-line file is the source's header and data with one line of 50 MB (MARC: a record that
never ends); the ordinary file repeats a real sample or a generated export's lines up to the
size asked for (tests/hostile.py builds both). The 1 GB case takes minutes per parser.

    .venv/bin/python benchmarks/bench_hostile.py --ordinary-mb 1024
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import hostile  # noqa: E402


def measure(source: str, path: Path) -> tuple[dict, float]:
    began = time.perf_counter()
    outcome = hostile.probe(source, path)
    return outcome, time.perf_counter() - began


def what(outcome: dict) -> str:
    if "error" in outcome:
        return "refused: " + outcome["error"].split(": ", 1)[-1][:60]
    rejected = ", ".join(f"{k} {v:,}" for k, v in sorted(outcome["rejected"].items()))
    return f"{outcome['rows']:,} rows" + (f"; {rejected}" if rejected else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--line-mb", type=int, default=50)
    parser.add_argument("--ordinary-mb", type=int, default=1024)
    parser.add_argument("--sources", default=",".join(hostile.NAMES))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="shuku-hostile-"))
    print("| parser | file | MB | outcome | seconds | peak MB | of which imports |")
    print("|---|---|---:|---|---:|---:|---:|")
    try:
        for source in args.sources.split(","):
            path = folder / "landing" / source / hostile.NAMES[source]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(hostile.huge_line(source, args.line_mb << 20))
            cases = [("one line", path.stat().st_size)]
            outcome, seconds = measure(source, path)
            rows = [(outcome, seconds)]
            size = hostile.write_ordinary(source, path, args.ordinary_mb << 20)
            cases.append(("ordinary", size))
            rows.append(measure(source, path))
            path.unlink()
            for (kind, size), (outcome, seconds) in zip(cases, rows):
                print(f"| {source} | {kind} | {size / (1 << 20):,.0f} | {what(outcome)} | {seconds:.1f} | "
                      f"{outcome['peak_mb']:,.0f} | {outcome['imports_mb']:,.0f} |", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
