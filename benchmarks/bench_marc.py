"""MARC records per second: Shuku's catalogue parser against plain pymarc reading the same file.

    .venv/bin/python benchmarks/bench_marc.py --records 100000
    .venv/bin/python benchmarks/bench_marc.py --records 20000      # a quick look

Builds an ISO 2709 file of --records records from the generator's catalogue (MARC21 with Koha
952 items, CLC/LC/Dewey classes, its damaged records included), repeated to size. Then, each
in its own process, times:
  shuku   `assets.opac.marc.parse_marc`: every record decoded strictly, the bib fields, the
          classes, the subjects and the 952 items extracted into typed frames, damaged
          records quarantined;
  pymarc  `MARCReader(to_unicode=True)` iterating the same file, doing nothing with a record.
Prints records/s and the ratio (aim: at most 1.2 × pymarc's time).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_ingest import _peak_mb  # noqa: E402

AIM = 1.2


def build_file(target: Path, records: int, seed: int) -> int:
    """Write at least ``records`` records to ``target``; returns how many the file holds."""
    from pymarc import MARCReader

    from generator import generate
    from warehouse.library import load_library
    from warehouse.settings import DEFAULT_LIBRARY_CONFIG

    sample = Path(tempfile.mkdtemp(prefix="marc-sample-"))
    generate(sample, load_library(DEFAULT_LIBRARY_CONFIG), scale="small", seed=seed, start=dt.date(2025, 9, 1), days=1)
    source = next((sample / "catalogue").glob("*.mrc"))
    data = source.read_bytes()
    with open(source, "rb") as fh:
        per_copy = sum(1 for _ in MARCReader(fh, to_unicode=True, utf8_handling="replace"))
    copies = -(-records // per_copy)
    target.write_bytes(data * copies)
    return per_copy * copies


def measure_shuku(path: Path) -> dict:
    from assets.opac.marc import parse_marc
    from warehouse.library import load_library
    from warehouse.settings import DEFAULT_LIBRARY_CONFIG

    library = load_library(DEFAULT_LIBRARY_CONFIG)
    began = time.perf_counter()
    result, items = parse_marc(path, library)
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "records": result.metadata["records_read"], "loaded": result.rows.height,
            "items": items.height, "peak_mb": _peak_mb()}


def measure_pymarc(path: Path) -> dict:
    from pymarc import MARCReader

    began = time.perf_counter()
    count = 0
    with open(path, "rb") as fh:
        for _record in MARCReader(fh, to_unicode=True, utf8_handling="replace"):
            count += 1
    return {"seconds": time.perf_counter() - began, "records": count, "peak_mb": _peak_mb()}


MEASURES = {"shuku": measure_shuku, "pymarc": measure_pymarc}


def _in_child(kind: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--file", str(path)],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(MEASURES[args.child](args.file)))
        return

    path = Path(tempfile.mkdtemp(prefix="shuku-bench-marc-")) / "catalogue.mrc"
    began = time.perf_counter()
    held = build_file(path, args.records, args.seed)
    print(f"built {held:,} records ({path.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - began:.1f} s → {path}")
    ours, plain = _in_child("shuku", path), _in_child("pymarc", path)
    print(f"{'':<8}{'records':>10}{'seconds':>9}{'records/s':>11}{'peak MB':>9}")
    for kind, r in (("shuku", ours), ("pymarc", plain)):
        print(f"{kind:<8}{r['records']:>10,}{r['seconds']:>9.1f}{r['records'] / r['seconds']:>11,.0f}{r['peak_mb']:>9.0f}")
    ratio = ours["seconds"] / plain["seconds"]
    print(f"ratio = Shuku's time / pymarc's = {ratio:.2f} (aim ≤ {AIM}); Shuku kept {ours['loaded']:,} records "
          f"and {ours['items']:,} items, quarantined {ours['records'] - ours['loaded']:,}")


if __name__ == "__main__":
    main()
