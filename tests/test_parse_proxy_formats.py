"""Consultation events from proxy logs: ezPAARSE's count on its own sample, other log formats
(Apache with a reverse proxy, a last field with spaces, Squid), the proxy's pages, robots, and
the library's own platform rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.eresources import consultations
from assets.eresources.consultations import PlatformRulesError, knowledge_base, load_file
from assets.eresources.ezproxy import parse

SAMPLE = "ezpaarse__sd.2012-11-30.300.log"
FACT_SQL = Path(__file__).resolve().parent.parent / "assets" / "models" / "core" / "fact_eresource_access.sql"


def _fact(rows: pl.DataFrame) -> pl.DataFrame:
    """core.fact_eresource_access's own SQL over parsed rows (the card number standing in for the pseudonym)."""
    con = duckdb.connect()
    con.execute("create schema staging")
    staged = rows.rename({"card_number": "patron_pid"})   # noqa: F841 - read by DuckDB by name
    con.execute("create table staging.ezproxy_access as select * from staged")
    return con.sql(FACT_SQL.read_text(encoding="utf-8")).pl()


def test_ezpaarse_sample_counts_as_ezpaarse_does(data_dir, library):
    """ezPAARSE finds 22 consultations in its ScienceDirect test log; Shuku must be within 2."""
    rows = parse(data_dir / "samples" / SAMPLE, library).rows
    fact = _fact(rows)
    assert abs(fact.height - 22) <= 2, fact.select("accessed_at", "rtype", "mime", "unitid")
    reasons = dict(rows.group_by("skip_reason").len().iter_rows())
    assert reasons["redirect"] == 62 and reasons["static"] == 8
    # the proxy's own login host (gate1.inist.fr) is no platform, and its lines no consultation
    assert "gate1.inist.fr" not in fact.get_column("platform").to_list()
    assert rows.filter(pl.col("host") == "gate1.inist.fr").get_column("is_consultation").sum() == 0
    article = fact.filter(pl.col("unitid") == "S1360138512001719").row(0, named=True)
    assert (article["rtype"], article["mime"], article["print_identifier"]) == ("ARTICLE", "HTML", "1360-1385")


def _log(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "ezproxy_2025-03-14.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


APACHE = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'


def test_apache_combined_with_reverse_proxy_paths_and_robots(tmp_path, library):
    lines = [
        '10.1.2.3 - 2023104512 [14/Mar/2025:10:02:03 +0800] "GET /https/onlinelibrary.wiley.com/doi/pdf/10.1002/anie.201209878 '
        'HTTP/1.1" 200 51234 "https://proxy.univ.edu/menu" "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"',
        '10.1.2.4 - - [14/Mar/2025:10:02:04 +0800] "GET /http/www.jstor.org:80/stable/pdf/10.2307/1234567.pdf HTTP/1.1" 200 9 '
        '"-" "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"',
        '10.1.2.5 - - [14/Mar/2025:10:02:05 +0800] "GET /login?url=https://www.jstor.org/ HTTP/1.1" 200 90 "-" '
        '"say \\"hi\\" agent"',
    ]
    result = parse(_log(tmp_path, lines), library, log_format=APACHE)
    assert result.rejects.height == 0
    rows = result.rows.to_dicts()
    assert (rows[0]["host"], rows[0]["platform"], rows[0]["path"]) == (
        "onlinelibrary.wiley.com", "Wiley Online Library", "/doi/pdf/10.1002/anie.201209878")
    assert (rows[0]["rtype"], rows[0]["mime"], rows[0]["doi"], rows[0]["is_robot"]) == (
        "ARTICLE", "PDF", "10.1002/anie.201209878", False)
    assert (rows[1]["host"], rows[1]["platform"], rows[1]["is_robot"], rows[1]["is_consultation"]) == (
        "www.jstor.org", "JSTOR", True, True)
    # the proxy's own login page: no platform, no consultation
    assert (rows[2]["platform"], rows[2]["skip_reason"], rows[2]["is_consultation"]) == (None, "proxy", False)


def test_last_field_with_spaces_and_host_with_port(tmp_path, library):
    log_format = '%h %l %u %t "%r" %s %b %v %{User-Agent}i'
    line = ('10.1.2.3 - - [14/Mar/2025:10:02:03 +0800] "GET /science/article/pii/S0167527311001239 HTTP/1.1" 200 5 '
            'www.sciencedirect.com:443 Mozilla/5.0 (Windows NT 10.0; Win64; x64)')
    rows = parse(_log(tmp_path, [line]), library, log_format=log_format).rows.to_dicts()
    assert (rows[0]["host"], rows[0]["platform"], rows[0]["unitid"], rows[0]["is_robot"]) == (
        "www.sciencedirect.com", "ScienceDirect", "S0167527311001239", False)


def test_squid_native_log(tmp_path, library):
    lines = ["1741917723.586    921 10.1.2.3 TCP_MISS/200 50712 GET https://link.springer.com/article/10.1007/"
             "s10696-011-9117-0 - HIER_DIRECT/151.101.0.95 text/html",
             "1741917724.100      3 10.1.2.3 TCP_MISS/304 0 GET https://link.springer.com/static/app.css - "
             "HIER_DIRECT/151.101.0.95 text/css"]
    result = parse(_log(tmp_path, lines), library, log_format="squid")
    rows = result.rows.to_dicts()
    assert result.rejects.height == 0 and len(rows) == 2
    assert str(rows[0]["accessed_at"]) == "2025-03-14 10:02:03.586000"     # Asia/Shanghai
    assert (rows[0]["platform"], rows[0]["rtype"], rows[0]["doi"]) == ("SpringerLink", "ARTICLE", "10.1007/s10696-011-9117-0")
    assert rows[1]["skip_reason"] == "static"


def test_squid_aborted_request_is_a_failed_request(tmp_path, library):
    """Squid writes status 000 when the client went away before an answer: a request, failed."""
    line = ("1741917723.586  60012 10.1.2.3 TCP_MISS_ABORTED/000 0 GET https://link.springer.com/article/10.1007/"
            "s10696-011-9117-0 - HIER_DIRECT/151.101.0.95 -")
    result = parse(_log(tmp_path, [line]), library, log_format="squid")
    assert result.rejects.height == 0
    row = result.rows.row(0, named=True)
    assert (row["status"], row["is_failed"], row["skip_reason"], row["is_consultation"]) == (0, True, "failed", False)


def test_proxy_hosts_setting_names_the_proxys_own_pages(tmp_path, library):
    configured = dataclasses.replace(library, ezproxy_proxy_hosts=("ezproxy.univ.edu",))
    lines = [f'10.1.2.3 - - [14/Mar/2025:10:02:0{i} +0800] "GET {url} HTTP/1.1" 200 5' for i, url in enumerate([
        "https://ezproxy.univ.edu/databases/a-z",                                  # the proxy's own page
        "https://login.ezproxy.univ.edu/sso/start",                                # a host under it
        "https://www-sciencedirect-com.ezproxy.univ.edu/science/article/pii/S0167527311001239",   # a platform
        "https://intranet.univ.edu/databases/a-z"])]                               # neither: its own name
    rows = parse(_log(tmp_path, lines), configured).rows.to_dicts()
    assert [(r["platform"], r["skip_reason"]) for r in rows] == [
        (None, "proxy"), (None, "proxy"), ("ScienceDirect", None), ("intranet.univ.edu", "unqualified")]


def test_library_config_refuses_a_proxy_host_that_is_no_host_name(tmp_path):
    from warehouse.library import LibraryConfigError, load_library

    config = tmp_path / "library.yaml"
    text = (Path(__file__).resolve().parent.parent / "config" / "library.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace("ezproxy:\n", "ezproxy:\n  proxy_hosts: ['https://ezproxy.univ.edu/']\n", 1),
                      encoding="utf-8")
    with pytest.raises(LibraryConfigError, match=r"ezproxy.proxy_hosts\[0\]. = 'https://ezproxy.univ.edu/' is not a host"):
        load_library(config)


def test_general_rules_read_what_any_scholarly_url_shows(tmp_path, library):
    """A platform without rules of its own (Gale) or a page its rules do not know: the general
    rules read the DOI in path or query and the page kind around it, in the platform's own
    conventions where its file states them (ACS's tables of contents are MISC, not HTML)."""
    lines = [f'10.1.2.3 - - [14/Mar/2025:10:02:0{i} +0800] "GET {url} HTTP/1.1" 200 5' for i, url in enumerate([
        "https://go.gale.com/doi/pdf/10.1086/123456",
        "https://go.gale.com/viewer/article?doi=10.1086%2F654321&src=pdf",
        "https://go.gale.com/ps/advancedSearch.do?userGroupName=x",
        "https://onlinelibrary.wiley.com/doi/epub/10.1002/anie.201209878",
        "https://pubs.acs.org/doi/book/10.1021/9780841229105",
        "https://www.tandfonline.com/journals/abc/report.pdf"])]
    rows = parse(_log(tmp_path, lines), library).rows
    got = rows.select("platform", "rtype", "mime", "unitid", "doi").rows()
    assert got == [
        ("Gale", "ARTICLE", "PDF", "123456", "10.1086/123456"),
        ("Gale", "ARTICLE", "HTML", "654321", "10.1086/654321"),
        ("Gale", "SEARCH", "HTML", None, None),
        ("Wiley Online Library", "ARTICLE", "HTML", "anie.201209878", "10.1002/anie.201209878"),
        ("ACS Publications", "TOC", "MISC", "9780841229105", "10.1021/9780841229105"),
        ("Taylor & Francis Online", "ARTICLE", "PDF", "report", None),
    ]


def test_squid_is_configured_by_folder(tmp_path, library):
    folder = tmp_path / "landing" / "ezproxy" / "squid"
    folder.mkdir(parents=True)
    path = folder / "ezproxy_2025-03-14.log"
    path.write_text("1741917723.586 921 10.1.2.3 TCP_MISS/200 5 GET https://www.jstor.org/stable/1234567 - "
                    "HIER_DIRECT/1.2.3.4 text/html\n", encoding="utf-8")
    configured = dataclasses.replace(library, ezproxy_folders={"ezproxy/squid": "squid"})
    rows = parse(path, configured).rows
    assert rows.get_column("platform").to_list() == ["JSTOR"]


def test_a_library_adds_and_replaces_platform_rules(tmp_path, library):
    own = tmp_path / "rules"
    own.mkdir()
    (own / "catalogue.yaml").write_text(
        "platform: Local Theses\nhosts: [theses.univ.edu]\nrules:\n"
        "- path: ^/thesis/(?P<unitid>\\d+)/pdf$\n  rtype: PHD_THESIS\n  mime: PDF\n", encoding="utf-8")
    configured = dataclasses.replace(library, ezproxy_rules=own)
    line = '10.1.2.3 - - [14/Mar/2025:10:02:03 +0800] "GET https://theses.univ.edu/thesis/42/pdf HTTP/1.1" 200 5'
    rows = parse(_log(tmp_path, [line]), configured).rows.to_dicts()
    assert (rows[0]["platform"], rows[0]["rtype"], rows[0]["unitid"]) == ("Local Theses", "PHD_THESIS", "42")
    assert len(knowledge_base(own)) == len(knowledge_base()) + 1


@pytest.mark.parametrize("text, message", [
    ("hosts: [a.org]\n", "start with `platform: <name>`"),
    ("platform: X\nhosts: [a.org]\nrules:\n- path: '^/(?P<unitid>'\n", "is not a regular expression polars can run"),
    ("platform: X\nhosts: [a.org]\nrules:\n- path: ^/a\n  sett: {}\n", "sett is not a rule key"),
    ("platform: X\nhosts: [a.org]\nrules:\n- path: ^/a\n  set: {doi: '10.1/{code}'}\n", "names code, which no group"),
    ("platform: X\nrules: []\n", "`hosts` must list"),
])
def test_rule_file_mistakes_name_the_file_and_rule(tmp_path, text, message):
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlatformRulesError, match=message) as caught:
        load_file(path)
    assert str(path) in str(caught.value)


def test_shipped_rules_cover_the_peer_platforms():
    names = {p.platform for p in knowledge_base() if p.hosts != (consultations.ANY_PLATFORM,)}
    assert len(names) >= 40 and {"ScienceDirect", "CNKI", "Duxiu", "JSTOR", "Web of Science"} <= names
    assert consultations.RULES_FOLDER.is_dir()


def test_a_platforms_conventions_apply_to_what_the_general_rules_find(tmp_path, library):
    """APS names an item by its whole DOI; a session id in the path is no part of the item."""
    lines = [f'10.1.2.3 - - [14/Mar/2025:10:02:0{i} +0800] "GET {url} HTTP/1.1" 200 5' for i, url in enumerate([
        "https://journals.aps.org/doi/abs/10.1103/PhysRevA.91.010501",
        "https://onlinelibrary.wiley.com/doi/10.1111/cen.12587/pdf;jsessionid=9621F8B2E364EF90.f01t02",
        "https://pubs.acs.org/loi/achre4"])]
    got = parse(_log(tmp_path, lines), library).rows.select("rtype", "mime", "unitid", "doi", "title_id").rows()
    assert got == [("ABS", "HTML", "10.1103/PhysRevA.91.010501", "10.1103/PhysRevA.91.010501", None),
                   ("ARTICLE", "PDF", "cen.12587", "10.1111/cen.12587", None),
                   ("TOC", "MISC", "achre4", None, "achre4")]


def test_a_rules_file_with_conventions_it_cannot_have_is_refused(tmp_path):
    from assets.eresources.consultations import PlatformRulesError, load_file

    path = tmp_path / "x.yaml"
    path.write_text("platform: X\nhosts: [x.org]\ngeneral: {unitid_from_doi: prefix}\nrules: []\n", encoding="utf-8")
    with pytest.raises(PlatformRulesError, match=r"x\.yaml: `general` takes unitid_from_doi \(suffix or doi\)"):
        load_file(path)


def test_a_cnki_download_is_named_by_cnkis_own_id_not_its_encrypted_file_name(tmp_path, library):
    url = ("http://pdf.oversea.cnki.net/cjfdsearch/pdfdownloadnew.asp?encode=en&zt=A002&filename=UMFl2Y5MjbZJXe1Jn"
           "QjdGczpkY2Y=0TT6ZVOvl3&doi=CNKI:SUN:KJGL.0.2017-07-015&p=cjfq")
    lines = [f'10.1.2.3 - - [14/Mar/2025:10:02:00 +0800] "GET {url} HTTP/1.1" 200 5']
    got = parse(_log(tmp_path, lines), library).rows.select("platform", "rtype", "mime", "unitid", "doi").rows()
    assert got == [("CNKI", "ARTICLE", "PDF", "CNKI:SUN:KJGL.0.2017-07-015", None)]


def test_a_rule_polars_cannot_run_is_told_with_its_file_and_rule(tmp_path):
    from assets.eresources.consultations import PlatformRulesError, load_file, qualify

    path = tmp_path / "x.yaml"
    path.write_text("platform: X\nhosts: [x.org]\nrules:\n- path: '^/a(?=b)'\n  rtype: ARTICLE\n", encoding="utf-8")
    with pytest.raises(PlatformRulesError, match=r"x\.yaml: rule 1 path: .*look-arounds"):
        load_file(path)
    path.write_text("platform: X\nhosts: [x.org]\nrules:\n- path: '^/(?>ab)'\n  rtype: ARTICLE\n", encoding="utf-8")
    load_file(path)                  # Python's atomic group: only polars refuses it, when the rule runs
    rows = pl.DataFrame({"__row": [0], "platform": ["X"], "host": ["x.org"], "path": ["/ab"], "query": [""]},
                        schema_overrides={"__row": pl.UInt32})
    with pytest.raises(PlatformRulesError, match=r"x\.yaml: rule 1: '\^/\(\?>ab\)' is not a regular expression polars"):
        qualify(rows, tmp_path)
