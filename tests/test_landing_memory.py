"""A landing file of any size is parsed and loaded in bounded memory: a batch of lines (MARC: of
records) at a time, its rows written a row group at a time. Reading in batches changes nothing
of the outcome (rows, rejects, line numbers, encodings, duplicates); the memory of a fresh process
parsing or loading a large ordinary file stays within ``MEMORY_BOUND_MB`` whatever its size."""

from __future__ import annotations

import gzip

import duckdb
import polars as pl
import pytest

import assets.ingest_sink
import assets.opac.marc
import assets.reading
import warehouse.textio
from assets.csvparse import combine
from assets.feeds import feed_named, parser_batches, source_parser
from assets.ingest import ingest_partition
from tests import hostile
from warehouse.limits import MEMORY_BOUND_MB
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

CSV_SOURCES = ("circulation", "holds", "patrons", "searches", "gates")


def _shapes(source: str) -> dict[str, bytes]:
    seed = hostile.seeds()[source]
    head, lines = hostile.split_head(source, seed)
    return {"seed": seed, "excel": hostile.excel_unicode_text(source),
            "gb18030": seed.decode("utf-8").encode("gb18030"),
            "cut off": seed[:-7], "gzip": gzip.compress(seed),
            "long line in the middle": head + b"".join(lines[:9]) + b"y" * 70_000 + b"\n" + b"".join(lines[9:]),
            "blank lines": head + b"\n\n".join(lines[:30]) + b"\r\n\r\n"}


def _parse(source, path, library):
    return combine(parser_batches(source_parser(source), path, library))


@pytest.mark.parametrize("source", CSV_SOURCES)
def test_batches_change_nothing_of_the_outcome(tmp_path, library, monkeypatch, source):
    path = tmp_path / hostile.NAMES[source]
    for shape, data in _shapes(source).items():
        path.write_bytes(data)
        whole = _parse(source, path, library)
        with monkeypatch.context() as small:
            small.setattr(assets.reading, "BATCH_BYTES", 600)
            small.setattr(warehouse.textio, "CHUNK", 500)
            batches = list(parser_batches(source_parser(source), path, library))
            # a file over a batch is checked for UTF-8 first: a GB18030 one is known before its first batch
            assert len(batches) > 1 or shape == "long line in the middle" or len(data) < 1200, shape
            batched = combine(batches)
        assert batched.rows.equals(whole.rows), shape
        assert batched.rejects.equals(whole.rejects), shape
        assert (batched.encoding, batched.metadata) == (whole.encoding, whole.metadata), shape
        assert whole.rows.height > 0, shape
    kept = len(hostile.split_head(source, hostile.seeds()[source])[1][:30])
    assert whole.metadata["blank_lines"] == 2 * (kept - 1) + 2      # two between each two lines, two at the end


def test_a_gb18030_file_whose_first_batch_is_ascii(tmp_path, library, monkeypatch):
    head, lines = hostile.split_head("patrons", hostile.seeds()["patrons"])
    ascii_lines = [line for line in lines if line.isascii()] or [lines[0].decode().encode("ascii", "replace")]
    data = head + b"".join(ascii_lines * 20) + "".join(x.decode() for x in lines[:5]).encode("gb18030")
    path = tmp_path / hostile.NAMES["patrons"]
    path.write_bytes(data)
    whole = _parse("patrons", path, library)
    monkeypatch.setattr(assets.reading, "BATCH_BYTES", 600)
    monkeypatch.setattr(warehouse.textio, "CHUNK", 500)
    batched = _parse("patrons", path, library)
    assert batched.encoding == whole.encoding == "gb18030"
    assert batched.rows.equals(whole.rows) and batched.rejects.equals(whole.rejects)


def test_marc_streams_record_by_record(tmp_path, library, monkeypatch):
    seed = hostile.seeds()["marc"]
    records = hostile.split_head("marc", seed)[1]
    # a record whose leader frames too much, one that never ends, padding between: each costs only itself
    damaged = b"".join(records[:5]) + b"99999" + records[5][5:] + b"".join(records[6:9]) + b"\r\n" + \
        hostile.huge_line("marc", 300_000) + b"\x00\x1a"
    for shape, data in {"seed": seed, "damaged": damaged, "gzip": gzip.compress(damaged)}.items():
        path = tmp_path / hostile.NAMES["marc"]
        path.write_bytes(data)
        whole = assets.opac.marc.parse(path, library)
        monkeypatch.setattr(assets.opac.marc, "BATCH_RECORDS", 3)
        monkeypatch.setattr(warehouse.textio, "CHUNK", 4096)
        batches = list(assets.opac.marc.parse_batches(path, library))
        monkeypatch.undo()
        assert len(batches) > 3, shape
        assert pl.concat([b.rows for b in batches]).equals(whole.rows), shape
        assert pl.concat([b.rejects for b in batches]).equals(whole.rejects), shape
        assert pl.concat([b.metadata["items"] for b in batches]).equals(whole.metadata["items"]), shape
    assert whole.rejects.get_column("reason").to_list() == ["bad_record"] * 2, whole.rejects
    assert whole.rejects.get_column("raw_text").str.len_chars().max() <= 4097


def test_a_large_partition_is_written_in_row_groups_as_it_would_be_whole(tmp_path, library, monkeypatch):
    """Rows repeated across row groups (and within one) are found as in a partition held whole."""
    head, lines = hostile.split_head("circulation", hostile.seeds()["circulation"])
    homes = {}
    for how in ("whole", "groups"):
        settings = Settings(tmp_path / how).ensure()
        folder = settings.landing / "circulation"
        folder.mkdir(parents=True)
        (folder / "statistics_2025-09-01.csv").write_bytes(head + b"".join(lines * 3) + b"".join(lines[:7]))
        (folder / "resent").mkdir()
        (folder / "resent" / "statistics_2025-09-01.csv").write_bytes(head + b"".join(lines[40:60]))
        with monkeypatch.context() as small:
            if how == "groups":
                small.setattr(assets.ingest_sink, "FLUSH_BYTES", 2000)
                small.setattr(assets.reading, "BATCH_BYTES", 1500)
                small.setattr(warehouse.textio, "CHUNK", 1000)
            outcome = ingest_partition(feed_named("circulation"), "2025-09-01", settings, library,
                                       Pseudonymiser.load(tmp_path / "secrets"), "run")
        stored = settings.lake / "staging" / "circulation_event" / "event_date=2025-09-01" / "part-0.parquet"
        log = duckdb.sql(f"select source_file, rows_read, rows_loaded, rows_quarantined, rows_duplicate from "
                         f"read_parquet('{settings.lake}/meta/ingest_log/**/*.parquet') order by source_file").fetchall()
        homes[how] = (pl.read_parquet(stored), outcome.rows_loaded, outcome.duplicates, log,
                      outcome.quarantined_by_reason)
        if how == "groups":
            assert len(duckdb.sql(f"select * from parquet_metadata('{stored}')").fetchall()) > 3
    assert homes["groups"][0].equals(homes["whole"][0])
    assert homes["groups"][1:] == homes["whole"][1:]
    assert homes["whole"][2] > 2 * 100 + 20
    assert sum(duplicate for *_, duplicate in homes["whole"][3]) == homes["whole"][2]
    assert not list((tmp_path / "groups").rglob(".tmp*"))


def _ordinary(tmp_path, source: str, size: int, vary: str | None = None):
    path = tmp_path / "landing" / source / hostile.NAMES[source]
    path.parent.mkdir(parents=True)
    hostile.write_ordinary(source, path, size, vary)
    return path


def test_parsing_a_large_file_holds_a_batch_not_the_file(tmp_path):
    """Parsing held 8 to 10 times a CSV file's size before it was read in batches (650 MB here)."""
    path = _ordinary(tmp_path, "circulation", 64 << 20)
    outcome = hostile.probe("circulation", path)
    assert outcome["rows"] > 1_000_000
    assert outcome["peak_mb"] - outcome["imports_mb"] < min(MEMORY_BOUND_MB, 4 * 64), outcome


@pytest.mark.slow
def test_loading_a_large_file_holds_a_row_group_not_the_file(tmp_path):
    path = _ordinary(tmp_path, "circulation", 96 << 20, vary="itemnumber")
    outcome = hostile.probe("circulation", path, hostile.LOAD)
    assert outcome["written"] and outcome["rows"] > 1_400_000 and outcome["duplicates"] == 0, outcome
    assert outcome["peak_mb"] - outcome["imports_mb"] < MEMORY_BOUND_MB, outcome


@pytest.mark.slow
def test_parsing_a_large_catalogue_holds_a_batch_of_records(tmp_path):
    """The MARC reader held the file's bytes and every record's values: 2.5 times the file."""
    path = _ordinary(tmp_path, "marc", 64 << 20)
    outcome = hostile.probe("marc", path)
    assert outcome["rows"] > 60_000 and not outcome["rejected"], outcome
    assert outcome["peak_mb"] - outcome["imports_mb"] < 100, outcome


def test_a_counter_report_over_its_limit_is_refused_before_it_is_read(tmp_path, library):
    """A report is read whole (each line a row per month): over ``max_report_bytes`` it is refused by name."""
    from dataclasses import replace

    from assets.eresources import counter
    from warehouse.limits import LandingLimits
    from warehouse.textio import LandingFileError

    small = replace(library, landing_limits=LandingLimits(max_report_bytes=1 << 20))
    path = _ordinary(tmp_path, "counter", 2 << 20)
    for data in (path.read_bytes(), gzip.compress(path.read_bytes())):
        path.write_bytes(data)
        with pytest.raises(LandingFileError, match=r"a COUNTER report of more than 1,048,576 bytes "
                                                   r"\(landing_limits\.max_report_bytes"):
            counter.parse(path, small)
    assert counter.parse(path, library).rows.height > 50_000
