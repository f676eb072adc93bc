"""Every parser, fuzzed with random bytes and with mutations of real and generated files.

The entry point is the one `shuku parse SOURCE FILE` calls. Whatever the bytes, a parser
ends in rows plus rejected lines with a reason, or one LandingFileError naming the file —
never another exception, a hang (the deadline) or rows out of proportion to the input.
Bounded: a few examples per parser by default; more under CI (profile chosen by ``CI``).
"""

from __future__ import annotations

import datetime as dt
import gzip
import importlib
import io
import os
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from openpyxl import Workbook

from assets.feeds import FEEDS, source_parser
from assets.parsing import REJECT_SCHEMA, ParseResult, Reason
from generator import generate
from schemas.model import conform, contract_for
from warehouse.library import load_library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import DEFAULT_LIBRARY_CONFIG
from warehouse.textio import LandingFileError

DATA = Path(__file__).parent / "data"
# Hypothesis keeps a cache of its own: outside the working tree.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "shuku-hypothesis")
COMMON = dict(database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
              deadline=dt.timedelta(seconds=10), print_blob=True)
settings.register_profile("shuku-default", max_examples=12, **COMMON)
settings.register_profile("shuku-ci", max_examples=int(os.environ.get("SHUKU_FUZZ_EXAMPLES", 1000)), **COMMON)
PROFILE = "shuku-ci" if os.environ.get("CI") else "shuku-default"

# Names a landing file of each source can have (parsers look at the name for the date and the folder).
NAMES = {
    "circulation": ["statistics_2025-09-01.csv", "folio_loans_2025-09-01.json"],
    "patrons": ["patrons_2025-09-01.csv"],
    "searches": ["search_history_2025-09-01.csv"],
    "marc": ["catalogue_2025-09-01.mrc", "catalogue_2025-09-01.xml"],
    "counter": ["Platform1_TR_2025-09.tsv", "Platform1_DR_2025-09.csv", "Platform1_TR_2025-09.json",
                "Platform1_TR_2025-09.xlsx"],
    "ezproxy": ["ezproxy_2025-09-01.log"],
    "gates": ["turnstile_2025-09-01.csv", "counter_2025-09-01.csv"],
}
SAMPLES = {
    "circulation": ["folio/folio_loans_2025-03-14.json"],
    "marc": ["samples/pymarc__marc.dat", "samples/pymarc__batch.xml"],
    "counter": ["samples/Project-Counter-cop5__TR_sample_r51.json", "samples/Project-Counter-cop5__TR_sample_r51.tsv",
                "samples/celus__COUNTER_R5_Report_Examples_TR.csv", "samples/celus__counter5_table_dr.tsv",
                "samples/pycounter__sushi_simple.json", "samples/pycounter__tr_j1.tsv"],
    "ezproxy": ["samples/ezpaarse__sd.2012-11-30.300.log"],
}
SEED_BYTES = 12_000    # seeds are cut to this size: enough for headers and a few hundred lines
SOURCE_OF = {"gates": "gates", "circulation": "circulation", "patrons": "patrons", "opac": "searches",
             "catalogue": "marc", "counter": "counter", "ezproxy": "ezproxy"}


def _xlsx(tsv: bytes) -> bytes:
    book = Workbook()
    sheet = book.active
    for line in tsv.decode("utf-8").splitlines():
        sheet.append([int(v) if v.isdigit() else v for v in line.split("\t")])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _seeds() -> dict[str, list[tuple[str, bytes]]]:
    """(file name, bytes) per source: the real samples and a tiny generated library's files."""
    seeds: dict[str, list[tuple[str, bytes]]] = {s: [] for s in NAMES}
    for source, files in SAMPLES.items():
        for relative in files:
            path = DATA / relative
            name = {"marc": "catalogue_2025-09-01" + (".xml" if path.suffix == ".xml" else ".mrc"),
                    "counter": f"Sample_TR_2025-09{path.suffix}", "ezproxy": "ezproxy_2012-11-30.log",
                    }.get(source, path.name)
            seeds[source].append((name, path.read_bytes()[:SEED_BYTES]))
    with tempfile.TemporaryDirectory() as folder:
        landing = Path(folder)
        report = generate(landing, load_library(DEFAULT_LIBRARY_CONFIG), scale="tiny", seed=7,
                          start=dt.date(2025, 9, 1), days=1)
        for made in report.files:
            path = landing / made.path
            data = path.read_bytes()
            if path.suffix == ".gz":
                data, name = gzip.decompress(data), path.name[:-3]
            else:
                name = path.name
            seeds[SOURCE_OF[made.path.split("/")[0]]].append((name, data[:SEED_BYTES]))
    tsv = (DATA / "samples/Project-Counter-cop5__TR_sample_r51.tsv").read_bytes()
    seeds["counter"].append(("Sample_TR_2025-09.xlsx", _xlsx(tsv)))
    return seeds


SEEDS = _seeds()
LIBRARY = load_library(DEFAULT_LIBRARY_CONFIG)
PSEUDONYMISER = Pseudonymiser(key=b"fuzz" * 8, version=1)
NASTY = [b",", b"\t", b'"', b"\n", b"\r\n", b"\r", b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\x1e", b"\x1d",
         b"\x1f", b"<", b"</", b"&#0;", b"{", b"}", b"[", b"]", b"\\", b"%", b"2025-13-45 25:61:61",
         b"9" * 40, b"-1", b"NaN", b"1e999", "书库".encode("gb18030"), "书库".encode("utf-8"), b"\xa1"]


@st.composite
def mutated(draw, source: str) -> tuple[str, bytes]:
    """A seed file of ``source`` with a few byte- and line-level edits, sometimes gzip-compressed."""
    name, data = draw(st.sampled_from(SEEDS[source]))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "delete", "insert", "nasty", "truncate", "dup_line", "drop_line",
                                   "field", "field"]))
        if op == "flip" and data:
            i = min(at, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif op == "nasty":
            data[at:at] = draw(st.sampled_from(NASTY))
        elif op == "truncate":
            del data[at:]
        elif op == "field":
            # One field of one line replaced: a value of the wrong kind in an otherwise good row.
            lines = bytes(data).split(b"\n")
            i = min(draw(st.integers(0, len(lines))), len(lines) - 1)
            sep = b"\t" if b"\t" in lines[i] else b","
            fields = lines[i].split(sep)
            j = min(draw(st.integers(0, len(fields))), len(fields) - 1)
            fields[j] = draw(st.sampled_from([b"", b" ", b'"', b'""', *NASTY]))
            lines[i] = sep.join(fields)
            data = bytearray(b"\n".join(lines))
        elif op in ("dup_line", "drop_line"):
            lines = bytes(data).split(b"\n")
            i = min(draw(st.integers(0, len(lines))), len(lines) - 1)
            lines[i:i + 1] = [lines[i]] * 2 if op == "dup_line" else []
            data = bytearray(b"\n".join(lines))
    if draw(st.booleans()) and not name.endswith(".xlsx") and draw(st.integers(0, 4)) == 0:
        return name + ".gz", gzip.compress(bytes(data))
    return name, bytes(data)


def random_file(source: str):
    return st.tuples(st.sampled_from(NAMES[source]), st.binary(max_size=3000))


def _parse(source: str, name: str, data: bytes) -> None:
    """Parse the bytes as a landing file of ``source`` and check what came out."""
    module, function = source_parser(source).split(":")
    parser = getattr(importlib.import_module(module), function)
    with tempfile.TemporaryDirectory() as folder:
        # A folder like landing's, so parsers that read a file beside (FOLIO service points) or
        # a folder's own format (EZproxy) see what they would see there.
        path = Path(folder) / "landing" / source / name
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        try:
            result = parser(path, LIBRARY)
        except LandingFileError as exc:
            assert name in str(exc), f"the error does not name the file: {exc}"
            return
    assert isinstance(result, ParseResult)
    assert isinstance(result.rows, pl.DataFrame)
    assert dict(result.rejects.select(list(REJECT_SCHEMA)).schema) == REJECT_SCHEMA
    reasons = set(result.rejects.get_column("reason").to_list())
    assert reasons <= {r.value for r in Reason}, reasons
    assert result.rejects.get_column("detail").null_count() == 0
    # What the ingest does next with the rows: they must fit the staging contracts.
    feed = next(f for f in FEEDS if f.source == source and f.format_of(Path(name)) is not None)
    for table, frame in feed.split(result).items():
        frame = PSEUDONYMISER.pseudonymise(frame.with_columns(pl.lit(name).alias("source_file")))
        conform(frame, contract_for(f"staging.{table}"))
    if not name.endswith(".gz"):
        # Rows in proportion to the input (COUNTER's months and metrics multiply a line).
        assert result.rows_read <= 50 * (len(data) + 1)


SOURCES = sorted(NAMES)


@pytest.mark.parametrize("source", SOURCES)
def test_mutated_real_files_load_or_fail_clearly(source):
    @settings(settings.get_profile(PROFILE))
    @given(mutated(source))
    def check(case):
        _parse(source, *case)
    check()


@pytest.mark.parametrize("source", SOURCES)
def test_random_bytes_load_or_fail_clearly(source):
    @settings(settings.get_profile(PROFILE))
    @given(random_file(source))
    def check(case):
        _parse(source, *case)
    check()


@pytest.mark.parametrize("source", SOURCES)
def test_every_seed_parses_unchanged(source):
    """The seeds themselves load (so the mutations start from files the parsers accept)."""
    assert SEEDS[source]
    for name, data in SEEDS[source]:
        _parse(source, name, data)
