"""EZproxy parser: the ezPAARSE sample, other LogFormats, rejects and the summary."""

from __future__ import annotations

import datetime as dt
import gzip
import re
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from assets.eresources.ezproxy import (
    EZPROXY_SCHEMA,
    LogFormatError,
    compile_log_format,
    parse,
    platform_of,
    summarise,
)
from assets.feeds import feed_named
from assets.ingest import ingest_partition
from tests.generated import generated_files
from warehouse.library import LibraryConfigError, load_library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings
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
    assert summary["platforms"] == {"ScienceDirect": summary["consultations"]} and summary["consultations"] == 24
    assert summary["not_consultations"]["redirect"] == 62 and summary["robots"] == 0


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
        "rtype": ["ARTICLE", None, None], "mime": ["HTML", None, None], "unitid": ["S0001", None, None],
        **{name: [None] * 3 for name in ("doi", "print_identifier", "online_identifier", "title_id", "publication_date")},
        "is_consultation": [True, False, False], "skip_reason": [None, "static", "failed"], "is_robot": [False] * 3,
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


@pytest.mark.parametrize("url, host, path", [
    ("/relative/path?q=1", None, "/relative/path"),
    ("https://user:pw@www.jstor.org:443/stable/123#frag", "www.jstor.org", "/stable/123"),
    ("http://[2001:db8::1]:8080/a/b.pdf", "[2001:db8::1]", "/a/b.pdf"),
    ("www.cnki.net/kns?x", "www.cnki.net", "/kns"),
    ("https://HOST.Example.COM", "host.example.com", "/"),
    ("https://a.b.c?only=query", "a.b.c", "/"),
    ("https://:443/p", None, "/p"),     # no host in the authority: none, not the scheme's name
])
def test_host_and_path_of_the_url(tmp_path, library, url, host, path):
    log = tmp_path / "ezproxy_2025-09-01.log"
    log.write_text(f'10.0.0.1 - - [01/Sep/2025:10:00:00 +0800] "GET {url} HTTP/1.1" 200 10\n', encoding="utf-8")
    rows = parse(log, library).rows
    assert rows.select("host", "path").row(0) == (host, path)


def test_urls_of_every_form_in_one_log_keep_their_lines_and_parts(tmp_path, library):
    """The usual forms are split by the line's own expression, the others read again: one file mixes both."""
    urls = ["https://www.jstor.org/stable/1?a=1", "CONNECT-ME", "www.cnki.net/kns?x=2", "/p?q=3",
            "https://user@wiley.com/doi/10.1/x", "http://[2001:db8::1]:8080/a?b=4"]
    lines = [f'10.0.0.1 - - [01/Sep/2025:10:00:0{i} +0800] "GET {url} HTTP/1.1" 200 10' for i, url in enumerate(urls)]
    lines.append('10.0.0.1 - - [01/Sep/2025:10:00:09 +0800] "GET /p HTTP/1.1" \u0662\u0660\u0660 10')   # Arabic-Indic 200
    log = tmp_path / "ezproxy_2025-09-01.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = parse(log, library)
    assert result.rows.select("source_line", "host", "path", "url").rows() == [
        (1, "www.jstor.org", "/stable/1", urls[0]), (2, "connect-me", "/", urls[1]),
        (3, "www.cnki.net", "/kns", urls[2]), (4, None, "/p", urls[3]), (5, "wiley.com", "/doi/10.1/x", urls[4]),
        (6, "[2001:db8::1]", "/a", urls[5])]
    assert result.rejects.select("source_line", "reason").rows() == [(7, "malformed_line")]


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




def test_generated_ezproxy_logs(tmp_path, library):
    for path, written in generated_files(tmp_path, library, "ezproxy"):
        result = parse(path, library)
        assert result.rows_read == written.rows, path
        rejected = summarise(result)["rejected"]
        for reason in ("malformed_line", "bad_timestamp"):
            assert rejected.get(reason, 0) == written.defects.get(reason, 0), (path, reason)
        day = dt.date.fromisoformat(path.name.removeprefix("ezproxy_").removesuffix(".log.gz"))
        assert set(result.rows.get_column("event_date")) == {day}


# --- LogFormat per landing folder, platforms from the library config --------------------

PROXY2 = '%h %{ezproxy-session}i %u %t "%r" %s %b'
PROXY2_LINE = ('10.20.30.40 S8Kf3a 2023104512 [14/Mar/2025:11:00:00 +0800] '
               '"GET https://www.pkulaw.com/chl/1.html HTTP/1.1" 200 900')


def _config(tmp_path, library, ezproxy) -> Path:
    """The demo library config with another `ezproxy` section."""
    data = yaml.safe_load(library.source.read_text(encoding="utf-8"))
    data["ezproxy"] = ezproxy
    path = tmp_path / "library.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_folders_and_platforms_are_read_from_the_config(tmp_path, library):
    lib = load_library(_config(tmp_path, library, {
        "log_format": '%h %l %u %t "%r" %s %b',
        "folders": {"ezproxy/proxy2/": PROXY2, "ezproxy/proxy2/old": "%h %l %u %t %v %U %s %b"},
        "platforms": {".Example.EDU": "Example Press"}}))
    assert lib.ezproxy_folders == {"ezproxy/proxy2": PROXY2, "ezproxy/proxy2/old": "%h %l %u %t %v %U %s %b"}
    assert lib.ezproxy_platforms == {"example.edu": "Example Press"}
    assert lib.ezproxy_log_format_for("ezproxy/proxy2") == PROXY2
    assert lib.ezproxy_log_format_for("ezproxy/proxy2/2025/03") == PROXY2
    assert lib.ezproxy_log_format_for("ezproxy/proxy2/old") == "%h %l %u %t %v %U %s %b"   # the deepest wins
    assert lib.ezproxy_log_format_for("ezproxy/proxy22") == '%h %l %u %t "%r" %s %b'        # whole names only
    assert lib.ezproxy_log_format_for("ezproxy") == '%h %l %u %t "%r" %s %b'
    assert library.ezproxy_folders == {"ezproxy/proxy2": PROXY2}     # the demo config has one too


@pytest.mark.parametrize("ezproxy, message", [
    ({"folders": {"proxy2": PROXY2}}, r"`ezproxy\.folders\['proxy2'\]`: 'proxy2' is not a folder under landing/ezproxy"),
    ({"folders": {"ezproxy/../gates": PROXY2}}, r"`ezproxy\.folders\['ezproxy/\.\./gates'\]`: .* not a folder under"),
    ({"folders": {"ezproxy/proxy2": ""}}, r"`ezproxy\.folders\['ezproxy/proxy2'\]` = '' is not a LogFormat string"),
    ({"folders": ["ezproxy/proxy2"]}, r"`ezproxy\.folders` must be a mapping, not list"),
    ({"platforms": {"pkulaw com/": "PKULaw"}}, r"`ezproxy\.platforms\['pkulaw com/'\]`: .* is not a host name suffix"),
    ({"platforms": {"pkulaw.com": None}}, r"`ezproxy\.platforms\['pkulaw\.com'\]` = None: give the platform's name"),
    ({"log_format": 42}, r"`ezproxy\.log_format` = 42 is not a LogFormat string"),
    ({"folder": {}}, r"`ezproxy\.folder` is not a setting; use log_format, folders, platforms"),
])
def test_config_mistakes_name_the_key(tmp_path, library, ezproxy, message):
    path = _config(tmp_path, library, ezproxy)
    with pytest.raises(LibraryConfigError, match=re.escape(str(path)) + ": " + message):
        load_library(path)


def _landing(tmp_path, day="2025-03-14") -> tuple[Path, Path]:
    """A default-format log in landing/ezproxy and a session-format log in landing/ezproxy/proxy2."""
    landing = tmp_path / "home" / "landing"
    (landing / "ezproxy" / "proxy2").mkdir(parents=True)
    first = landing / "ezproxy" / f"ezproxy_{day}.log"
    second = landing / "ezproxy" / "proxy2" / f"ezproxy_{day}.log"
    first.write_text(LINE + "\n")
    second.write_text(PROXY2_LINE + "\n" + PROXY2_LINE.replace("11:00:00", "11:05:00") + "\n")
    return first, second


def test_each_folder_is_parsed_with_its_own_log_format(tmp_path, library):
    first, second = _landing(tmp_path)
    one, two = parse(first, library), parse(second, library)
    assert (one.metadata["log_format_key"], two.metadata["log_format_key"]) == (
        "ezproxy.log_format", "ezproxy.folders['ezproxy/proxy2']")
    assert one.rejects.height == two.rejects.height == 0
    assert one.rows.get_column("session_id").to_list() == [None]
    assert two.rows.select("session_id", "card_number", "platform").rows() == [
        ("S8Kf3a", "2023104512", "PKULaw (北大法宝)")] * 2          # the platform comes from the config too
    # A folder below a configured one keeps its LogFormat.
    deeper = second.parent / "2025" / second.name
    deeper.parent.mkdir()
    deeper.write_bytes(second.read_bytes())
    assert parse(deeper, library).rows.height == 2


def test_two_folders_of_different_formats_load_into_one_partition(tmp_path, library):
    first, second = _landing(tmp_path)
    settings = Settings(tmp_path / "home").ensure()
    feed = feed_named("ezproxy")
    assert feed.files_for(settings.landing, "2025-03-14") == [first, second]
    outcome = ingest_partition(feed, "2025-03-14", settings, library, Pseudonymiser.load(settings.secrets_dir), "run-1")
    assert outcome.rows_loaded == {"ezproxy_access": 3} and outcome.quarantined_by_reason == {}
    stored = pl.read_parquet(settings.lake / "staging" / "ezproxy_access" / "event_date=2025-03-14" / "part-0.parquet")
    assert stored.sort("accessed_at").select("source_file", "session_id", "platform").rows() == [
        ("ezproxy/ezproxy_2025-03-14.log", None, "ScienceDirect"),
        ("ezproxy/proxy2/ezproxy_2025-03-14.log", "S8Kf3a", "PKULaw (北大法宝)"),
        ("ezproxy/proxy2/ezproxy_2025-03-14.log", "S8Kf3a", "PKULaw (北大法宝)")]


def test_unknown_directive_names_the_config_key_and_folder(tmp_path, library):
    _, second = _landing(tmp_path)
    lib = replace(library, ezproxy_folders={"ezproxy/proxy2": '%h %Z %u %t "%r" %s %b'})
    with pytest.raises(LandingFileError, match=(
            r"proxy2/ezproxy_2025-03-14\.log: LogFormat '%h %Z .*': %Z is not a LogFormat directive\. "
            r"Fix it: set `ezproxy\.folders\['ezproxy/proxy2'\]` in the library config .* landing/ezproxy/proxy2")):
        parse(second, lib)
    with pytest.raises(LogFormatError, match=r"%\{Referer\}q is not a LogFormat directive"):
        compile_log_format('%h %t "%r" %{Referer}q')


def test_wrong_folder_format_is_told_with_its_key(tmp_path, library):
    first, _ = _landing(tmp_path)
    lib = replace(library, ezproxy_log_format='%h %t "%r" %s %b')
    first.write_text(LINE + "\n" + LINE + "\n")
    with pytest.raises(LandingFileError, match=r"no line matches LogFormat .*; set `ezproxy\.log_format` in the "
                                               r"library config .* or give folder ezproxy/ its own"):
        parse(first, lib)


def test_config_platforms_win_over_the_shipped_list(library):
    lib = replace(library, ezproxy_platforms={"sciencedirect.com": "Elsevier ScienceDirect", "oup.com": "OUP"})
    assert platform_of("www.sciencedirect.com", lib) == "Elsevier ScienceDirect"
    assert platform_of("www.sciencedirect.com") == "ScienceDirect"
    assert platform_of("academic.oup.com", lib) == "Oxford Academic"     # the longer shipped suffix still wins
    assert platform_of("global.oup.com", lib) == "OUP"
