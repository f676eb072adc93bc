"""OPAC search-history parser: queries as typed and normalised, zero-hit searches, rejects."""

from __future__ import annotations

import datetime as dt
import gzip

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.opac.searches import parse
from warehouse.textio import LandingFileError

HEADER = "time,sessionid,cardnumber,query_desc,type,total"

SCHEMA = {
    "searched_at": pl.Datetime("us"), "event_date": pl.Date, "session_id": pl.Utf8, "card_number": pl.Utf8,
    "query_text": pl.Utf8, "query_normalised": pl.Utf8, "search_type": pl.Utf8, "hit_count": pl.Int64,
    "zero_hit": pl.Boolean, "source_line": pl.Int64,
}


def _write(tmp_path, lines, *, end="\n", encoding="utf-8", gz=False, final_newline=True):
    data = (end.join(lines) + (end if final_newline else "")).encode(encoding)
    path = tmp_path / ("search_history_2025-03-14.csv" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


LINES = [
    HEADER,
    "2025-03-14 10:01:02,4f1c2a9e7b,2023104512,图书馆 数据治理,biblio,37",
    '2025-03-14 10:02:00,9a8b7c6d5e,,"ＤＡＴＡ　Governance,  Ｐｙｔｈｏｎ ",authority,0',
]


def test_queries_as_typed_and_normalised(tmp_path, library):
    result = parse(_write(tmp_path, LINES), library)
    expected = pl.DataFrame({
        "searched_at": [dt.datetime(2025, 3, 14, 10, 1, 2), dt.datetime(2025, 3, 14, 10, 2)],
        "event_date": [dt.date(2025, 3, 14)] * 2,
        "session_id": ["4f1c2a9e7b", "9a8b7c6d5e"], "card_number": ["2023104512", None],
        "query_text": ["图书馆 数据治理", "ＤＡＴＡ　Governance,  Ｐｙｔｈｏｎ "],
        "query_normalised": ["图书馆 数据治理", "data governance, python"],
        "search_type": ["biblio", "authority"], "hit_count": [37, 0], "zero_hit": [False, True],
        "source_line": [2, 3],
    }, schema=SCHEMA)
    assert_frame_equal(result.rows, expected)
    assert result.format == "koha-search-history-csv"


@pytest.mark.parametrize("variant", [dict(encoding="gb18030", end="\r\n"), dict(gz=True), dict(final_newline=False)])
def test_encodings_and_compression(tmp_path, library, variant):
    expected = parse(_write(tmp_path, LINES), library).rows
    result = parse(_write(tmp_path, LINES, **variant), library)
    assert_frame_equal(result.rows, expected)
    assert result.encoding == variant.get("encoding", "utf-8")


def test_each_reason(tmp_path, library):
    lines = [
        HEADER,
        "2025-03-14 10:01:02,s1,,数据,biblio,3",            # 2 ok
        "yesterday 10:01:02,s1,,数据,biblio,3",             # 3
        "2025-03-14 10:01:02,s1,,数据,keyword,3",           # 4
        "2025-03-14 10:01:02,s1,,数据,biblio,many",         # 5
        "2025-03-14 10:01:02,s1,,数据,biblio,-1",           # 6
        "2025-03-14 10:01:02,,,数据,biblio,3",              # 7
        "2025-03-14 10:01:02,s1,,数据,biblio,3,x",          # 8
        "   ",                                             # 9 blank
        "2025-03-14 10:01:02,s1,,数据",                     # 10 cut off
    ]
    result = parse(_write(tmp_path, lines, final_newline=False), library)
    assert result.rows["source_line"].to_list() == [2]
    assert dict(zip(result.rejects["source_line"], result.rejects["reason"])) == {
        3: "bad_timestamp", 4: "unknown_code", 5: "bad_number", 6: "bad_number", 7: "missing_required",
        8: "malformed_line", 10: "truncated_line"}
    assert result.rows_read == 8
    assert result.rejects.filter(pl.col("source_line") == 6)["detail"].item() == (
        "column total: '-1' is not a whole number ≥ 0")


def test_wrong_header(tmp_path, library):
    with pytest.raises(LandingFileError, match=r"line 1: .*missing columns total; unexpected columns 'hits'"):
        parse(_write(tmp_path, [HEADER.replace("total", "hits"), LINES[1]]), library)


def test_generated_landing_defects_are_all_found(tmp_path_factory, library):
    import generator
    from assets.csvparse import duplicate_rows

    landing = tmp_path_factory.mktemp("landing")
    report = generator.generate(landing, library, scale="tiny", seed=42, start=dt.date(2025, 9, 1), days=7)
    results = [parse(f, library) for f in sorted((landing / "opac").glob("search_history_*.csv"))]
    found = dict(pl.concat([r.rejects for r in results]).group_by("reason").len().iter_rows())
    expected = report.defects_by_source()["searches"]
    assert found == {k: v for k, v in expected.items() if k in ("malformed_line", "bad_timestamp", "truncated_line")}
    assert sum(duplicate_rows(r.rows) for r in results) == expected.get("duplicate_row", 0)
    assert sum(r.rows_read for r in results) == report.rows_by_source()["searches"]
