"""Koha statistics parser: typed rows, rejects with their reasons, and the file's variants."""

from __future__ import annotations

import datetime as dt
import gzip

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.circulation.koha import FOLIO_ONLY, parse
from assets.parsing import REJECT_SCHEMA
from warehouse.textio import LandingFileError

HEADER = "datetime,branch,type,itemnumber,itemtype,location,cardnumber,ccode,categorycode"
ISSUE = "2025-03-14 09:12:45,MAIN,issue,100234,BK,STACKS,2023104512,CIR,UG"
LOCALUSE = "2025-03-14 10:00:00,EAST,localuse,100235,BK,REF,,REF,"

SCHEMA = {
    "event_at": pl.Datetime("us"), "event_date": pl.Date, "branch_code": pl.Utf8, "event_type": pl.Utf8,
    "item_number": pl.Int64, "item_type": pl.Utf8, "location": pl.Utf8, "collection_code": pl.Utf8,
    "category_code": pl.Utf8, "card_number": pl.Utf8, "source_line": pl.Int64,
}


def _write(tmp_path, lines, *, end="\n", final_newline=True, encoding="utf-8", gz=False, name="statistics_2025-03-14.csv"):
    text = end.join(lines) + (end if final_newline else "")
    data = text.encode(encoding)
    path = tmp_path / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _reasons(result):
    return dict(zip(result.rejects["source_line"].to_list(), result.rejects["reason"].to_list()))


def test_rows_are_typed_in_file_order(tmp_path, library):
    result = parse(_write(tmp_path, [HEADER, ISSUE, LOCALUSE]), library)
    expected = pl.DataFrame({
        "event_at": [dt.datetime(2025, 3, 14, 9, 12, 45), dt.datetime(2025, 3, 14, 10)],
        "event_date": [dt.date(2025, 3, 14)] * 2,
        "branch_code": ["MAIN", "EAST"], "event_type": ["issue", "localuse"],
        "item_number": [100234, 100235], "item_type": ["BK", "BK"], "location": ["STACKS", "REF"],
        "collection_code": ["CIR", "REF"], "category_code": ["UG", None], "card_number": ["2023104512", None],
        "source_line": [2, 3],
    }, schema=SCHEMA)
    assert_frame_equal(result.rows.drop(FOLIO_ONLY), expected)
    # The FOLIO item columns are empty for Koha, whose export names the item by its number.
    assert result.rows.select(FOLIO_ONLY).null_count().row(0) == (2,) * len(FOLIO_ONLY)
    assert result.rejects.schema == pl.Schema(REJECT_SCHEMA) and result.rejects.height == 0
    assert (result.format, result.encoding) == ("koha-statistics-csv", "utf-8")


@pytest.mark.parametrize("variant", [
    dict(end="\r\n"), dict(encoding="gb18030"), dict(gz=True), dict(end="\r\n", gz=True, encoding="gb18030"),
    dict(final_newline=False), dict(end="\r"),
])
def test_line_endings_encodings_and_gzip_give_the_same_rows(tmp_path, library, variant):
    lines = [HEADER, ISSUE.replace("STACKS", "中文书库"), LOCALUSE]
    plain = parse(_write(tmp_path, lines, name="plain.csv"), library)
    other = parse(_write(tmp_path, lines, **variant), library)
    assert_frame_equal(other.rows, plain.rows)
    assert other.rows["location"][0] == "中文书库"
    assert other.encoding == variant.get("encoding", "utf-8")


def test_header_with_bom_spaces_and_quotes_is_accepted(tmp_path, library):
    header = '\ufeff "datetime" ,branch , type,itemnumber,itemtype,location,cardnumber,ccode,CATEGORYCODE'
    result = parse(_write(tmp_path, [header, ISSUE]), library)
    assert result.rows.height == 1 and result.rejects.height == 0


def test_columns_in_another_order_are_read_by_name(tmp_path, library):
    header = "branch,datetime,type,itemnumber,itemtype,location,cardnumber,ccode,categorycode"
    line = "MAIN,2025-03-14 09:12:45,issue,100234,BK,STACKS,2023104512,CIR,UG"
    result = parse(_write(tmp_path, [header, line]), library)
    assert_frame_equal(result.rows, parse(_write(tmp_path, [HEADER, ISSUE], name="b.csv"), library).rows)


def test_quoted_field_with_a_comma(tmp_path, library):
    line = '2025-03-14 09:12:45,MAIN,issue,100234,BK,"Stacks, level 3",2023104512,CIR,UG'
    doubled = '2025-03-14 09:13:00,MAIN,return,100234,BK,"say ""hi""",2023104512,CIR,UG'
    result = parse(_write(tmp_path, [HEADER, line, ISSUE, doubled]), library)
    assert result.rows["location"].to_list() == ["Stacks, level 3", "STACKS", 'say "hi"']
    assert result.rows["source_line"].to_list() == [2, 3, 4]


def test_each_reason_with_line_number_and_detail(tmp_path, library):
    lines = [
        HEADER,
        ISSUE,                                                                         # 2 ok
        "2025-13-45 25:61:00,MAIN,issue,100234,BK,STACKS,2023104512,CIR,UG",           # 3
        "2025-03-14 09:12:45,MAIN,borrow,100234,BK,STACKS,2023104512,CIR,UG",          # 4
        "2025-03-14 09:12:45,MAIN,issue,10023x,BK,STACKS,2023104512,CIR,UG",           # 5
        "2025-03-14 09:12:45,MAIN,issue,100234,BK,STACKS,,CIR,UG",                     # 6
        "2025-03-14 09:12:45,MAIN,issue,100234,BK,STACKS,2023104512,CIR",              # 7
        "",                                                                            # 8 blank
        "2025-03-14 09:12:45,MAIN,issue,100234,BK,STACKS,2023104512,CIR,UG,extra",     # 9
        '2025-03-14 09:12:45,MAIN,issue,"100234,BK,STACKS,2023104512,CIR,UG',          # 10
        "2025-03-14 09:12:45,NORTH,issue,100234,BK,STACKS,2023104512,CIR,UG",          # 11
        ",MAIN,issue,100234,BK,STACKS,2023104512,CIR,UG",                              # 12
        "2025-03-14 09:12:45,MAIN,return,100234,BK,STACKS,,CIR,UG",                    # 13 ok: anonymised return
        "2025-03-14 09:12:45,MAIN,issue,100",                                          # 14 cut off
    ]
    result = parse(_write(tmp_path, lines, final_newline=False), library)
    assert result.rows["source_line"].to_list() == [2, 13]
    assert _reasons(result) == {
        3: "bad_timestamp", 4: "unknown_code", 5: "bad_number", 6: "missing_required", 7: "malformed_line",
        9: "malformed_line", 10: "malformed_line", 11: "unknown_code", 12: "missing_required", 14: "truncated_line",
    }
    assert result.rows_read == 12                     # 13 data lines, one blank
    assert result.metadata["blank_lines"] == 1
    detail = dict(zip(result.rejects["source_line"], result.rejects["detail"]))
    assert detail[3] == "column datetime: '2025-13-45 25:61:00' is not YYYY-MM-DD HH:MM:SS"
    assert detail[7] == "expected 9 fields, found 8"
    assert "column cardnumber" in detail[6]
    assert not result.rejects["detail"].str.contains("2023104512").any()
    assert result.rejects.filter(pl.col("source_line") == 5)["raw_text"].item() == lines[4]


def test_short_last_line_with_newline_is_malformed_not_truncated(tmp_path, library):
    result = parse(_write(tmp_path, [HEADER, ISSUE, "2025-03-14 09:12:45,MAIN,issue"]), library)
    assert _reasons(result) == {3: "malformed_line"}


def test_cut_inside_a_quoted_last_line_is_truncated(tmp_path, library):
    result = parse(_write(tmp_path, [HEADER, ISSUE, '2025-03-14 09:12:45,MAIN,issue,1,BK,"Stacks, le'],
                          final_newline=False), library)
    assert _reasons(result) == {3: "truncated_line"}


def test_card_numbers_in_details_are_masked(tmp_path, library):
    # A shifted export could put a card number where a code belongs.
    line = "2025-03-14 09:12:45,MAIN,issue 2023104512,100234,BK,STACKS,2023104512,CIR,UG"
    result = parse(_write(tmp_path, [HEADER, line]), library)
    assert result.rejects["detail"].item() == (
        "column type: 'issue <card number>' is not one of issue, localuse, renew, return")


def test_header_only_file_has_no_rows(tmp_path, library):
    result = parse(_write(tmp_path, [HEADER]), library)
    assert result.rows.drop(FOLIO_ONLY).schema == pl.Schema(SCHEMA) and result.rows_read == 0
    assert result.empty == "a header and no rows"


def test_an_empty_file_says_so(tmp_path, library):
    result = parse(_write(tmp_path, [], final_newline=False), library)
    assert result.empty == "the file is empty" and result.rows_read == 0


@pytest.mark.parametrize("lines, message", [
    (["", ISSUE], r"line 1: no header \(the line is blank\)"),
    ([ISSUE], r"line 1: .*missing columns datetime, .*none of its 9 values is a column name"),
    ([HEADER.replace("cardnumber", "borrowernumber"), ISSUE], r"line 1: .*missing columns cardnumber; unexpected columns 'borrowernumber'"),
])
def test_a_wrong_header_stops_the_file(tmp_path, library, lines, message):
    path = _write(tmp_path, lines, final_newline=bool(lines))
    with pytest.raises(LandingFileError, match=message) as error:
        parse(path, library)
    assert str(path) in str(error.value) and "Expected" in str(error.value)


def test_generated_landing_defects_are_all_found(tmp_path_factory, library):
    import generator
    from assets.csvparse import duplicate_rows

    landing = tmp_path_factory.mktemp("landing")
    report = generator.generate(landing, library, scale="tiny", seed=42, start=dt.date(2025, 9, 1), days=7)
    results = [parse(f, library) for f in sorted((landing / "circulation").glob("statistics_*.csv"))]
    rejects = pl.concat([r.rejects for r in results])
    found = dict(rejects.group_by("reason").len().iter_rows())
    expected = report.defects_by_source()["circulation"]
    assert found == {k: v for k, v in expected.items() if k in ("malformed_line", "bad_timestamp", "truncated_line")}
    assert sum(duplicate_rows(r.rows) for r in results) == expected.get("duplicate_row", 0)
    assert sum(r.rows_read for r in results) == report.rows_by_source()["circulation"]


def test_a_nul_byte_takes_the_slow_path_with_the_same_result(tmp_path, library):
    lines = [HEADER, ISSUE, ISSUE.replace("STACKS", "STA\x00CKS"), "", "2025-03-14 09:12:45,MAIN,issue", LOCALUSE]
    result = parse(_write(tmp_path, lines, end="\r\n"), library)
    assert result.rows["source_line"].to_list() == [2, 3, 6]
    assert result.rows["location"][1] == "STA\x00CKS"
    assert dict(zip(result.rejects["source_line"], result.rejects["reason"])) == {5: "malformed_line"}
