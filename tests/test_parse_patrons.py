"""ILS patron export parser: typed reader records, and no direct identifier anywhere in the output."""

from __future__ import annotations

import datetime as dt
import gzip

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.patrons.ils import parse
from warehouse.textio import LandingFileError

HEADER = ("cardnumber,surname,firstname,categorycode,college,department,enrolment_year,email,phone,"
          "dateenrolled,profiling_consent")
WANG = "2023104512,王,小明,UG,信息管理学院,图书馆学系,2023,xm.wang@example.edu.cn,13800001234,2023-09-01,Y"
LI = "1998000001,李,秀欣,STAFF,,,1998,xiuxin.li@example.edu.cn,17022155492,1998-07-15,N"
ZHAO = '2024200002,"Zhao, Jr",Lei,PG,"Law, Politics",国际法系,2024,lei.zhao@example.edu.cn,15015086011,2024-09-01,'
IDENTIFIERS = ("王", "小明", "xm.wang", "example.edu.cn", "13800001234", "Zhao", "Lei", "17022155492")

SCHEMA = {
    "card_number": pl.Utf8, "category_code": pl.Utf8, "college": pl.Utf8, "department": pl.Utf8,
    "enrolment_year": pl.Int64, "enrolled_date": pl.Date, "profiling_consent": pl.Boolean, "source_line": pl.Int64,
}


def _write(tmp_path, lines, *, end="\r\n", encoding="gb18030", gz=False):
    data = (end.join(lines) + end).encode(encoding)
    path = tmp_path / ("patrons_2025-09-07.csv" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_rows_without_direct_identifiers(tmp_path, library):
    result = parse(_write(tmp_path, [HEADER, WANG, LI, ZHAO]), library)
    expected = pl.DataFrame({
        "card_number": ["2023104512", "1998000001", "2024200002"], "category_code": ["UG", "STAFF", "PG"],
        "college": ["信息管理学院", None, "Law, Politics"], "department": ["图书馆学系", None, "国际法系"],
        "enrolment_year": [2023, 1998, 2024],
        "enrolled_date": [dt.date(2023, 9, 1), dt.date(1998, 7, 15), dt.date(2024, 9, 1)],
        "profiling_consent": [True, False, None], "source_line": [2, 3, 4],
    }, schema=SCHEMA)
    assert_frame_equal(result.rows, expected)
    assert (result.encoding, result.format) == ("gb18030", "ils-patron-csv")
    shown = str(result.rows.to_dicts()) + str(result.metadata)
    assert not any(word in shown for word in IDENTIFIERS)


@pytest.mark.parametrize("variant", [dict(encoding="utf-8"), dict(end="\n"), dict(gz=True)])
def test_utf8_lf_and_gzip_variants(tmp_path, library, variant):
    expected = parse(_write(tmp_path, [HEADER, WANG, LI, ZHAO]), library).rows
    assert_frame_equal(parse(_write(tmp_path, [HEADER, WANG, LI, ZHAO], **variant), library).rows, expected)


def test_rejects_keep_the_raw_line_but_details_name_no_one(tmp_path, library):
    lines = [
        HEADER,
        WANG,
        WANG.replace(",UG,", ",FRESHER,"),                          # 3 unknown category
        WANG.replace(",2023,", ",xm.wang@example.edu.cn,"),          # 4 an e-mail where the year belongs
        WANG.replace("2023-09-01", "01/09/2023"),                   # 5
        WANG.replace(",Y", ",yes"),                                 # 6
        WANG.replace("2023104512,", ",", 1),                         # 7 no card
        WANG.replace("王,小明", "王小明"),                            # 8 a field short
    ]
    result = parse(_write(tmp_path, lines), library)
    reasons = dict(zip(result.rejects["source_line"], result.rejects["reason"]))
    assert reasons == {3: "unknown_code", 4: "bad_number", 5: "bad_timestamp", 6: "unknown_code",
                       7: "missing_required", 8: "malformed_line"}
    assert result.rejects["raw_text"].to_list() == lines[2:]
    details = " ".join(result.rejects["detail"])
    assert not any(word in details for word in (*IDENTIFIERS, "2023104512", "FRESHER"))
    assert "column enrolment_year" in details and "column dateenrolled" in details


def test_a_headerless_export_names_no_reader_in_the_error(tmp_path, library):
    with pytest.raises(LandingFileError, match=r"line 1: .*missing columns cardnumber.*header may be missing") as error:
        parse(_write(tmp_path, [ZHAO.replace('"', ""), WANG]), library)
    assert not any(word in str(error.value) for word in (*IDENTIFIERS, "2023104512"))


def test_generated_patrons_parse_cleanly(tmp_path_factory, library):
    import generator
    landing = tmp_path_factory.mktemp("landing")
    report = generator.generate(landing, library, scale="tiny", seed=42, start=dt.date(2025, 9, 1), days=7)
    (path,) = (landing / "patrons").glob("patrons_*.csv")
    result = parse(path, library)
    expected = report.defects_by_source().get("patrons", {})
    found = dict(result.rejects.group_by("reason").len().iter_rows())
    assert found == {k: v for k, v in expected.items() if k in ("malformed_line", "bad_timestamp", "truncated_line")}
    assert result.rows_read == report.rows_by_source()["patrons"]
    assert result.rows["card_number"].n_unique() == result.rows.height - expected.get("duplicate_row", 0)
