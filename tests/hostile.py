"""Landing files as offices and broken systems really send them, built from real samples and the
generator's exports: Excel's "Unicode text", one enormous line or field, a cut-off gzip or
workbook, JSON nested without end, a gzip that inflates a thousandfold. Used by the tests and by
benchmarks/bench_hostile.py, which also measures each parser's peak memory in its own process.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import gzip
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "samples"
# Per source: the landing file name a hostile file takes, and whether its first line is a header.
NAMES = {"circulation": "statistics_2025-09-01.csv", "holds": "holds_2025-09-01.csv",
         "patrons": "patrons_2025-09-01.csv", "searches": "search_history_2025-09-01.csv",
         "gates": "turnstile_2025-09-01.csv", "counter": "Sample_TR_2025-09.tsv",
         "ezproxy": "ezproxy_2025-09-01.log", "marc": "catalogue_2025-09-01.mrc"}
TABULAR = ("circulation", "holds", "patrons", "searches", "gates", "counter")
GENERATED = {"circulation": "circulation/statistics_", "holds": "circulation/holds_", "patrons": "patrons/patrons_",
             "searches": "opac/search_history_", "gates": "gates/turnstile_"}


# A card number and an e-mail address a broken line carries: no message about the file may show them.
CARD, EMAIL = "2022170001", "reader@example.edu"


def broken_turnstile_file(landing: Path, day: str) -> Path:
    """A turnstile export whose every line is malformed (too few fields), one carrying CARD and EMAIL."""
    folder = landing / "gates"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["time,gate,direction,card,result", f"{day} 08:06:00;EAST-G1;IN;{CARD};{EMAIL}"]
    lines += [f"{day} 09:{m:02d}:00 EAST-G1 IN" for m in range(5)]
    path = folder / f"turnstile_{day}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_no_personal_data(text: str) -> None:
    assert CARD not in text and EMAIL not in text
    assert not re.search(r"\b[0-9]{10}\b", text), "a card-number-like value in a message"


@functools.cache
def seeds() -> dict[str, bytes]:
    """An ordinary file of each source, as UTF-8: the generator's tiny exports and the real samples."""
    from generator import generate
    from warehouse.library import load_library
    from warehouse.settings import DEFAULT_LIBRARY_CONFIG
    from warehouse.textio import decode

    found = {"counter": (SAMPLES / "Project-Counter-cop5__TR_sample_r51.tsv").read_bytes(),
             "ezproxy": (SAMPLES / "ezpaarse__sd.2012-11-30.300.log").read_bytes(),
             "marc": (SAMPLES / "pymarc__marc.dat").read_bytes()}
    with tempfile.TemporaryDirectory() as folder:
        landing = Path(folder)
        generate(landing, load_library(DEFAULT_LIBRARY_CONFIG), scale="tiny", seed=3, start=dt.date(2025, 9, 1), days=3)
        for source, prefix in GENERATED.items():
            path = next(p for p in sorted(landing.rglob("*")) if str(p.relative_to(landing)).startswith(prefix))
            data = path.read_bytes()
            data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            data = decode(data, path)[0].encode("utf-8")      # the patron export comes in GB18030
            found[source] = data[:data.rfind(b"\n") + 1]       # whole lines only (a cut-off one is another test)
    return found


def split_head(source: str, data: bytes) -> tuple[bytes, list[bytes]]:
    """(the lines before the data: a header or a COUNTER header block, the data lines)."""
    if source == "marc":
        return b"", [r + b"\x1d" for r in data.split(b"\x1d") if r.strip()]
    lines = data.splitlines(keepends=True)
    if source == "ezproxy":
        return b"", lines
    if source == "counter":
        at = next(i for i, line in enumerate(lines) if line.startswith(b"Platform\t") or b"\tMetric_Type" in line)
        return b"".join(lines[:at + 1]), lines[at + 1:]
    return lines[0], lines[1:]


def huge_line(source: str, size: int) -> bytes:
    """The source's file with one line of ``size`` bytes after the header (MARC: a record that never ends)."""
    head, lines = split_head(source, seeds()[source])
    filler = b"99999nam" if source == "marc" else b"x"
    line = (filler * (size // len(filler) + 1))[:size]
    return head + line + (b"" if source == "marc" else b"\n") + b"".join(lines[:20])


def huge_field(source: str, size: int) -> bytes:
    """The source's file with one field of its first data line ``size`` bytes long (a URL for EZproxy)."""
    head, lines = split_head(source, seeds()[source])
    first = lines[0].decode("utf-8").rstrip("\r\n")
    if source == "ezproxy":
        at = first.index("/", first.index('"GET ') + 12)
        changed = first[:at] + "/" + "a" * size + first[at:]
    else:
        sep = "\t" if source == "counter" else ","
        cells = first.split(sep)
        cells[1] = "x" * size
        changed = sep.join(cells)
    return head + changed.encode("utf-8") + b"\n" + b"".join(lines[1:20])


def excel_unicode_text(source: str, data: bytes | None = None, encoding: str = "utf-16-le") -> bytes:
    """A tabular file as Excel's "Unicode text" saves it: a byte-order mark, UTF-16, tabs, CRLF, and
    quotes around a value holding a comma, a quote or a tab."""
    text = (data if data is not None else seeds()[source]).decode("utf-8")
    special = '\t"\n' + ("" if source == "counter" else ",")   # Excel quotes a comma even between tabs

    def cell(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in special) else value

    rows = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if source == "counter" else ",")
    body = "".join("\t".join(cell(v) for v in row) + "\r\n" for row in rows)
    bom = codecs.BOM_UTF16_LE if encoding == "utf-16-le" else codecs.BOM_UTF16_BE
    return bom + body.encode(encoding)


def bomb(size: int) -> bytes:
    """A gzip inflating a thousandfold: ``size`` bytes of one letter."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as out:
        block = b"a" * (1 << 20)
        for _ in range(size // len(block)):
            out.write(block)
    return buffer.getvalue()


def deep_json(depth: int) -> bytes:
    return b'{"Report_Header": ' + b"[" * depth + b"]" * depth + b"}"


def truncated_gzip(source: str) -> bytes:
    whole = gzip.compress(seeds()[source])
    return whole[: len(whole) // 2]


def truncated_xlsx() -> bytes:
    from openpyxl import Workbook
    book = Workbook()
    for line in seeds()["counter"].decode("utf-8").splitlines():
        book.active.append(line.split("\t"))
    buffer = io.BytesIO()
    book.save(buffer)
    whole = buffer.getvalue()
    return whole[: len(whole) * 2 // 3]


def write_ordinary(source: str, path: Path, size: int, vary: str | None = None) -> int:
    """Write an ordinary file of about ``size`` bytes: the seed's data lines over and over; returns its size.

    ``vary``: a whole-number column of a CSV source that each repetition raises by ten million, so
    that the rows differ (otherwise every repetition repeats the first one's rows)."""
    head, lines = split_head(source, seeds()[source])
    at = head.decode("utf-8").rstrip("\r\n").split(",").index(vary) if vary else None
    with path.open("wb") as out:
        out.write(head)
        written, repetition = len(head), 0
        while written < size:
            block = b"".join(lines) if at is None else b"".join(_raised(line, at, repetition) for line in lines)
            out.write(block)
            written += len(block)
            repetition += 1
    return written


def _raised(line: bytes, at: int, repetition: int) -> bytes:
    cells = line.split(b",")
    if len(cells) > at and cells[at].isdigit():
        cells[at] = str(int(cells[at]) + repetition * 10_000_000).encode()
    return b",".join(cells)


# Peak memory is VmHWM, the high-water mark of this process's own memory since it started: unlike
# ru_maxrss it does not carry the parent's size over (Linux folds the parent's into ru_maxrss at exec).
PROBE = """
import json, resource, sys, importlib
from pathlib import Path

def peak_mb():
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

source, path = sys.argv[1], Path(sys.argv[2])
from assets.feeds import parser_batches, source_parser
from warehouse.library import load_library
from warehouse.settings import DEFAULT_LIBRARY_CONFIG
from warehouse.textio import LandingFileError
importlib.import_module(source_parser(source).split(":")[0])
library = load_library(DEFAULT_LIBRARY_CONFIG)
before = peak_mb()
try:
    rows, reasons, shown, empty, encoding = 0, {}, 0, None, ""
    for result in parser_batches(source_parser(source), path, library):     # as shuku parse and the ingest read it
        rows += result.rows.height
        for reason, count in (result.rejects.group_by("reason").len().rows() if result.rejects.height else []):
            reasons[reason] = reasons.get(reason, 0) + count
        shown = max([shown, *(len(t or "") for t in result.rejects.get_column("raw_text").to_list())])
        empty, encoding = result.empty, result.encoding
    outcome = {"rows": rows, "rejected": reasons, "empty": empty, "longest_raw": shown, "encoding": encoding}
except LandingFileError as exc:
    outcome = {"error": str(exc)}
outcome["imports_mb"] = before
outcome["peak_mb"] = peak_mb()
print(json.dumps(outcome))
"""


# The same, loading the file into a staging partition of a fresh home as `shuku run` does.
LOAD = PROBE.split("before = peak_mb()")[0] + """
import tempfile
from assets.feeds import FEEDS
from assets.ingest import ingest_partition
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings
feed = next(f for f in FEEDS if f.source == source and f.format_of(path) is not None)
home = Settings(Path(tempfile.mkdtemp(prefix="shuku-load-")) / "home").ensure()
landed = home.landing / feed.folder / path.name
landed.parent.mkdir(parents=True, exist_ok=True)
landed.symlink_to(path.resolve())
pseudonymiser = Pseudonymiser.load(home.secrets_dir)
before = peak_mb()
try:
    done = ingest_partition(feed, feed.key_of(landed) or None, home, library, pseudonymiser, "load-probe")
    outcome = {"rows": sum(done.rows_loaded.values()), "rejected": done.quarantined_by_reason,
               "duplicates": done.duplicates, "written": done.written, "refused": bool(done.refused)}
except LandingFileError as exc:
    outcome = {"error": str(exc)}
outcome["imports_mb"] = before
outcome["peak_mb"] = peak_mb()
import shutil
shutil.rmtree(home.home.parent, ignore_errors=True)
print(json.dumps(outcome))
"""


def probe(source: str, path: Path, script: str = PROBE) -> dict:
    """Parse ``path`` as ``source`` in a fresh process (``LOAD``: load it into a fresh home): the outcome,
    and the process's peak memory (MB)."""
    done = subprocess.run([sys.executable, "-c", script, source, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        raise AssertionError(f"the {source} parser's process failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
