"""EZproxy parser: the ezPAARSE sample, other LogFormats, rejects and the summary."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
import gzip

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.eresources.ezproxy import EZPROXY_SCHEMA, compile_log_format, parse, platform_of, summarise
from warehouse.textio import LandingFileError

LINE = ('10.12.34.56 - 2023104512 [14/Mar/2025:10:02:03 +0800] '
        '"GET https://www.sciencedirect.com:443/science/article/pii/S0001 HTTP/1.1" 200 51234')


def test_ezpaarse_sample_parses_without_rejects(data_dir, library):
    result = parse(data_dir / "samples" / "ezpaarse__sd.2012-11-30.300.log", library)
    assert result.rejects.height == 0
    assert result.rows.height == 283
    assert result.rows.schema == pl.Schema(EZPROXY_SCHEMA)
    first = result.rows.row(0, named=True)
    # 00:13:10 +0100 is 07:13:10 in Asia/Shanghai
    assert first["accessed_at"] == dt.datetime(2012, 11, 30, 7, 13, 10)
    assert first["client_network"] == "247.63.228.0/24"
    assert (first["host"], first["path"], first["platform"]) == ("pdn.sciencedirect.com", "/science", "ScienceDirect")
    summary = summarise(result)
    assert summary["lines_read"] == 283 and summary["rejected"] == {}
    assert summary["platforms"]["ScienceDirect"] == summary["accesses"] - summary["platforms"].get("gate1.inist.fr", 0)


def test_default_format_line(tmp_path, library):
    path = tmp_path / "ezproxy_2025-03-14.log.gz"
    static = LINE.replace("pii/S0001", "logo.PNG").replace("2023104512", "-")
    failed = LINE.replace(" 200 51234", " 404 -")
    path.write_bytes(gzip.compress(("\r\n".join([LINE, static, failed]) + "\r\n").encode()))
    rows = parse(path, library).rows
    expected = pl.DataFrame({
        "accessed_at": [dt.datetime(2025, 3, 14, 10, 2, 3)] * 3,
        "event_date": [dt.date(2025, 3, 14)] * 3,
        "client_network": ["10.12.34.0/24"] * 3,
        "card_number": ["2023104512", None, "2023104512"],
        "session_id": [None] * 3,
        "method": ["GET"] * 3,
        "url": ["https://www.sciencedirect.com:443/science/article/pii/S0001",
                "https://www.sciencedirect.com:443/science/article/logo.PNG",
                "https://www.sciencedirect.com:443/science/article/pii/S0001"],
        "host": ["www.sciencedirect.com"] * 3,
        "path": ["/science/article/pii/S0001", "/science/article/logo.PNG", "/science/article/pii/S0001"],
        "status": [200, 200, 404],
        "bytes": [51234, 51234, 0],
        "platform": ["ScienceDirect"] * 3,
        "is_static": [False, True, False],
        "is_failed": [False, False, True],
        "source_line": [1, 2, 3],
    }, schema=EZPROXY_SCHEMA)
    assert_frame_equal(rows, expected)


def test_rejects_bad_lines_and_timestamps(tmp_path, library):
    path = tmp_path / "ezproxy.log"
    path.write_text("\n".join([LINE, "garbage here", LINE.replace("14/Mar/2025", "31/Foo/2025"), LINE]) + "\n")
    result = parse(path, library)
    assert result.rows.get_column("source_line").to_list() == [1, 4]
    assert result.rejects.select("source_line", "reason").rows() == [(2, "malformed_line"), (3, "bad_timestamp")]
    assert result.rejects.get_column("detail")[1].startswith("%t: [31/Foo/2025:10:02:03 +0800] is not")
    assert not result.rejects.get_column("detail").str.contains("2023104512").any()
    assert summarise(result)["rejected"] == {"bad_timestamp": 1, "malformed_line": 1}


def test_other_log_format_with_session_and_headers(tmp_path, library):
    fmt = '%h %{ezproxy-session}i %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %{ezproxy-groups}i %T'
    line = ('2001:db8:abcd:12::1 S8Kf3a 2023104512 [14/Mar/2025:02:02:03 +0000] '
            '"GET http://kns.cnki.net/kcms/detail.aspx?id=1 HTTP/1.1" 302 0 "-" "Mozilla/5.0 (X11; Linux)" Default+Staff 0')
    path = tmp_path / "ezproxy.log"
    path.write_text(line + "\n")
    result = parse(path, library, log_format=fmt)
    assert result.rejects.height == 0
    row = result.rows.row(0, named=True)
    assert row["client_network"] == "2001:db8:abcd::/48"
    assert row["session_id"] == "S8Kf3a"
    assert row["accessed_at"] == dt.datetime(2025, 3, 14, 10, 2, 3)
    assert (row["host"], row["path"], row["platform"], row["status"]) == ("kns.cnki.net", "/kcms/detail.aspx", "CNKI", 302)


def test_format_without_request_uses_vhost_and_path(tmp_path, library):
    path = tmp_path / "ezproxy.log"
    path.write_text("10.1.2.3 - - [14/Mar/2025:10:00:00 +0800] ieeexplore.ieee.org /document/1 ?x=1 200 10\n")
    row = parse(path, library, log_format="%h %l %u %t %v %U %q %s %b").rows.row(0, named=True)
    assert (row["host"], row["path"], row["url"], row["platform"]) == (
        "ieeexplore.ieee.org", "/document/1", "/document/1?x=1", "IEEE Xplore")


def test_compiled_pattern_has_named_groups():
    pattern = compile_log_format('%h %l %u %t "%r" %s %b')
    for group in ("client", "user", "time", "method", "url", "status", "bytes"):
        assert f"(?P<{group}>" in pattern


def test_platform_mapping():
    assert platform_of("onlinelibrary.wiley.com") == "Wiley Online Library"
    assert platform_of("www.wanfangdata.com.cn") == "Wanfang Data"
    assert platform_of("notsciencedirect.com") == "notsciencedirect.com"   # suffix at a dot only
    assert platform_of("unknown.example.org") == "unknown.example.org"


def test_wrong_log_format_raises(tmp_path, library):
    path = tmp_path / "ezproxy.log"
    path.write_text("time,gate,direction\n2025-03-14 08:00:03,MAIN-G1,IN\n")
    with pytest.raises(LandingFileError, match=r"ezproxy\.log: line 1: no line matches LogFormat"):
        parse(path, library)


def test_cut_off_last_line_is_truncated_not_malformed(tmp_path, library):
    path = tmp_path / "ezproxy.log"
    whole = '10.1.2.3 - - [14/Mar/2025:10:02:03 +0800] "GET https://www.jstor.org/stable/1 HTTP/1.1" 200 12\n'
    path.write_text(whole * 2 + '10.1.2.3 - - [14/Mar/2025:10:02:0')
    result = parse(path, library)
    assert result.rows.height == 2
    assert result.rejects.get_column("reason").to_list() == ["truncated_line"]



def _generated(tmp_path, library, source):
    """(file path, GeneratedFile) for every file of `source` a tiny generation run wrote."""
    gen = pytest.importorskip("generator")
    if not hasattr(gen, "generate"):
        pytest.skip("generator.generate is not written yet")
    landing = tmp_path / "landing"
    report = gen.generate(landing, library, scale="tiny", seed=42, start=dt.date(2025, 9, 1), days=7)
    files = [(Path(f.path) if Path(f.path).is_absolute() else landing / f.path, f)
             for f in report.files if f.source == source]
    assert files, f"the generator wrote no {source} files"
    return files


def test_generated_ezproxy_logs(tmp_path, library):
    for path, written in _generated(tmp_path, library, "ezproxy"):
        result = parse(path, library)
        assert result.rows_read == written.rows, path
        rejected = summarise(result)["rejected"]
        for reason in ("malformed_line", "bad_timestamp"):
            assert rejected.get(reason, 0) == written.defects.get(reason, 0), (path, reason)
        day = dt.date.fromisoformat(path.name.removeprefix("ezproxy_").removesuffix(".log.gz"))
        assert set(result.rows.get_column("event_date")) == {day}
