"""Files as offices and broken systems send them: Excel's "Unicode text" and other encodings, lines
over the limit, empty files, and failures that end in one line (the hostile shapes with memory
bounds are in test_fuzz_hostile.py)."""

from __future__ import annotations

import codecs
import gzip
import importlib
import json
import re

import polars as pl
import pytest
from click.testing import CliRunner

from assets.feeds import source_parser
from assets.ingest import ingest_partition
from assets.feeds import feed_named
from pipelines.cli import main
from tests import hostile
from warehouse.library import LibraryConfigError, load_library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, Settings

TABULAR = hostile.TABULAR


def _parse(source, path, library):
    module, function = source_parser(source).split(":")
    return getattr(importlib.import_module(module), function)(path, library)


def _write(tmp_path, source, data, name=None):
    path = tmp_path / "landing" / source / (name or hostile.NAMES[source])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _same(a, b):
    assert a.rows.drop("source_line").equals(b.rows.drop("source_line"))
    assert a.rejects.select("source_line", "reason").equals(b.rejects.select("source_line", "reason"))


@pytest.mark.parametrize("source", TABULAR)
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_excel_unicode_text_reads_as_the_original(tmp_path, library, source, encoding):
    """Saved from Excel as "Unicode text" (BOM, UTF-16, tabs, CRLF, a comma-holding value quoted),
    an export gives the rows its UTF-8 original gives."""
    original = _parse(source, _write(tmp_path / "a", source, hostile.seeds()[source]), library)
    saved = _parse(source, _write(tmp_path / "b", source, hostile.excel_unicode_text(source, encoding=encoding)), library)
    assert saved.encoding == encoding and original.rows.height > 0
    _same(saved, original)


def test_every_real_counter_sample_reads_from_excel_unicode_text(tmp_path, library):
    for sample in sorted(hostile.SAMPLES.glob("Project-Counter-cop5__*_r51.tsv")):
        data = sample.read_bytes()
        original = _parse("counter", _write(tmp_path / "a", "counter", data), library)
        saved = _parse("counter", _write(tmp_path / "b", "counter", hostile.excel_unicode_text("counter", data)), library)
        assert saved.format == original.format and saved.metadata["report_id"] == original.metadata["report_id"]
        _same(saved, original)


@pytest.mark.parametrize("source, sample", [
    ("counter", "Project-Counter-cop5__TR_sample_r51.json"), ("ezproxy", "ezpaarse__sd.2012-11-30.300.log"),
    ("marc", "pymarc__batch.xml")])
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-8-sig", "gb18030"])
def test_other_files_read_in_every_encoding(tmp_path, library, source, sample, encoding):
    text = (hostile.SAMPLES / sample).read_text(encoding="utf-8")
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    if source == "marc" and encoding.startswith("utf-16"):
        text = text.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    elif source == "marc":
        text = re.sub(r'encoding="UTF-8"', f'encoding="{encoding.replace("-sig", "").upper()}"', text)
    name = "catalogue_2025-09-01.xml" if source == "marc" else None
    original = _parse(source, _write(tmp_path / "a", source, (hostile.SAMPLES / sample).read_bytes(), name), library)
    saved = _parse(source, _write(tmp_path / "b", source, bom + text.encode(encoding), name), library)
    assert original.rows.height > 0
    _same(saved, original)


def test_folio_loans_read_from_utf16(tmp_path, library, data_dir):
    folder = data_dir / "folio"
    original = _parse("circulation", folder / "folio_loans_2025-03-14.json", library)
    target = tmp_path / "landing" / "circulation"
    target.mkdir(parents=True)
    for path in folder.glob("*.json"):
        (target / path.name).write_bytes(codecs.BOM_UTF16_LE + path.read_text(encoding="utf-8").encode("utf-16-le"))
    saved = _parse("circulation", target / "folio_loans_2025-03-14.json", library)
    assert saved.encoding == "utf-16-le"
    _same(saved, original)


@pytest.mark.parametrize("source", ["circulation", "holds", "patrons", "searches", "gates", "counter", "ezproxy"])
def test_a_line_over_the_limit_is_quarantined_with_its_length(tmp_path, library, source):
    size = 3 << 20
    result = _parse(source, _write(tmp_path, source, hostile.huge_line(source, size)), library)
    long = result.rejects.filter(pl.col("reason") == "line_too_long")
    assert long.height == 1
    assert len(long["raw_text"][0]) <= 200 and f"{size:,} bytes" in long["detail"][0]
    assert result.rows.height > 0           # the lines after it are read


def test_the_limit_is_the_library_config_s_per_source(tmp_path, library):
    config = tmp_path / "library.yaml"
    config.write_text(DEFAULT_LIBRARY_CONFIG.read_text(encoding="utf-8")
                      + "landing_limits:\n  max_line_bytes: {gates: 2048}\n", encoding="utf-8")
    tight = load_library(config)
    data = hostile.huge_field("gates", 4000)
    assert "line_too_long" in _parse("gates", _write(tmp_path, "gates", data), tight).rejects["reason"].to_list()
    assert "line_too_long" not in _parse("gates", _write(tmp_path, "gates", data), library).rejects["reason"].to_list()
    config.write_text(DEFAULT_LIBRARY_CONFIG.read_text(encoding="utf-8")
                      + "landing_limits:\n  max_line_bytes: {turnstiles: 2048}\n", encoding="utf-8")
    with pytest.raises(LibraryConfigError, match="turnstiles.*not a landing source"):
        load_library(config)


def test_a_header_over_the_limit_is_named_not_echoed(tmp_path, library):
    data = b"x" * (1 << 20) + b"\n" + hostile.seeds()["gates"]
    result = CliRunner().invoke(main, ["parse", "gates", str(_write(tmp_path, "gates", data))])
    assert result.exit_code == 2 and "xxxxxxxxxx" * 30 not in result.output
    assert "Line 1 was left out: line of 1,048,576 bytes" in result.output


@pytest.mark.parametrize("source, shape", [(s, shape) for s in sorted(hostile.NAMES) for shape in
                                           ("no bytes", "white space", "header only")
                                           if shape != "header only" or s in TABULAR])
def test_an_empty_file_is_reported_as_such(tmp_path, library, source, shape):
    data = {"no bytes": b"", "white space": b"\r\n\n", "header only": hostile.split_head(source, hostile.seeds()[source])[0]}
    path = _write(tmp_path, source, gzip.compress(data[shape]) if shape == "no bytes" else data[shape])
    assert _parse(source, path, library).empty
    result = CliRunner().invoke(main, ["parse", source, str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}: empty (" in result.output and "usually a failed export" in result.output


def test_an_empty_daily_file_is_logged_empty_and_keeps_the_stored_partition(tmp_path, library):
    settings = Settings(tmp_path / "home").ensure()
    folder = settings.landing / "ezproxy"
    folder.mkdir(parents=True)
    (folder / "ezproxy_2012-11-30.log").write_bytes((hostile.SAMPLES / "ezpaarse__sd.2012-11-30.300.log").read_bytes())
    feed, pseudonymiser = feed_named("ezproxy"), Pseudonymiser(key=b"k" * 32, version=1)
    first = ingest_partition(feed, "2012-11-30", settings, library, pseudonymiser, "run-1")
    assert first.written
    stored = next(settings.lake.rglob("staging/ezproxy_access/*2012-11-30*/*.parquet")).read_bytes()
    (folder / "ezproxy_2012-11-30.log").write_bytes(b"")
    second = ingest_partition(feed, "2012-11-30", settings, library, pseudonymiser, "run-2")
    assert not second.written and second.empty_files == ["ezproxy/ezproxy_2012-11-30.log"]
    assert next(settings.lake.rglob("staging/ezproxy_access/*2012-11-30*/*.parquet")).read_bytes() == stored
    log = pl.read_parquet(next(settings.lake.rglob("meta/ingest_log/ezproxy/2012-11-30/run-run-2.parquet")))
    assert log["file_status"].to_list() == ["empty"]


def test_a_parser_failure_is_one_line_and_its_traceback_goes_to_the_log(tmp_path, monkeypatch):
    """A parser's bug (simulated: the parser raises) never shows a traceback; the home's log has it."""
    import assets.eresources.ezproxy as ezproxy

    def broken(path, library):
        raise ZeroDivisionError("0123456789 in a message")
    monkeypatch.setattr(ezproxy, "parse", broken)
    path = _write(tmp_path, "ezproxy", b"anything\n")
    result = CliRunner().invoke(main, ["parse", "ezproxy", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert f"{path}: the ezproxy parser failed (ZeroDivisionError)" in result.output
    log = Settings.from_env().home / "logs" / "errors.log"
    assert "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()
    assert "0123456789" not in log.read_text()          # a card number in a message is masked


@pytest.mark.parametrize("source, data, message", [
    ("counter", hostile.deep_json(100_000), "nested too deeply"),
    ("circulation", b'{"loans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ("counter", b'{"Report_Header": {"Report_Name": "' + b"T" * 100_000 + b'"}}', "a JSON value of 100,000 bytes"),
])
def test_json_that_cannot_be_an_answer_is_refused_in_one_line(tmp_path, source, data, message):
    name = "folio_loans_2025-09-01.json" if source == "circulation" else "Sample_TR_2025-09.json"
    result = CliRunner().invoke(main, ["parse", source, str(_write(tmp_path, source, data, name))])
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert "T" * 300 not in result.output


def test_parse_summary_stays_json(tmp_path):
    result = CliRunner().invoke(main, ["parse", "gates", str(_write(tmp_path, "gates", hostile.huge_line("gates", 1 << 20)))])
    summary = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    assert summary["rejected_by_reason"] == {"line_too_long": 1} and result.exit_code == 1


def test_erasure_drops_the_reader_from_an_excel_unicode_text_file(tmp_path, library):
    """A UTF-16 file is cut into lines in its text, not its bytes: 上 is 0A 4E in UTF-16LE, and 中 (2D 4E)
    beside a reader's card must not hide it. The mark, the tabs, the CRLF and the other lines stay."""
    from assets.privacy_assets import landing_rewriter

    head, lines = hostile.split_head("patrons", hostile.seeds()["patrons"])
    lines = [line.decode("utf-8") for line in lines[:12]]
    card = lines[3].split(",")[0]
    lines[3] = lines[3].replace(lines[3].split(",")[1], "上官", 1)    # the reader's surname
    lines[5] = lines[5].replace(lines[5].split(",")[1], "上中", 1)    # another reader's
    data = hostile.excel_unicode_text("patrons", head + "".join(lines).encode("utf-8"))
    path = _write(tmp_path, "patrons", data)
    before = _parse("patrons", path, library)

    rewritten, dropped = landing_rewriter(library)(path, data, lambda c: c == card)

    assert dropped == 1 and rewritten.startswith(codecs.BOM_UTF16_LE)
    text, old = rewritten[2:].decode("utf-16-le"), data[2:].decode("utf-16-le")
    assert card not in text and "上中" in text and "上官" not in text
    assert text.split("\r\n") == [line for line in old.split("\r\n") if card not in line]
    path.write_bytes(rewritten)
    after = _parse("patrons", path, library)
    assert after.encoding == "utf-16-le" and after.rows.height == before.rows.height - 1
    assert after.rows.get_column("card_number").to_list() == [c for c in before.rows.get_column("card_number").to_list()
                                                              if c != card]
