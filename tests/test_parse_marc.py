"""MARC21 catalogue parser: real pymarc samples, a hand-built record with 中图法 and items."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pymarc import Field, Indicators, Record, Subfield

from assets.opac.marc import BIB_SCHEMA, ITEM_SCHEMA, parse, parse_marc
from tests.generated import generated_files
from warehouse.textio import LandingFileError


def _record(bib_id: str, items: list[dict] | None = None) -> Record:
    rec = Record(force_utf8=True)
    rec.leader = rec.leader[:9] + "a" + rec.leader[10:]
    rec.add_field(
        Field(tag="001", data=bib_id),
        Field(tag="008", data="250301s2024    cc            000 0 chi d"),
        Field(tag="020", indicators=Indicators(" ", " "), subfields=[Subfield("a", "978-7-111-12345-6 (平装)")]),
        Field(tag="084", indicators=Indicators(" ", " "), subfields=[Subfield("a", "TP311.13"), Subfield("2", "clc")]),
        Field(tag="100", indicators=Indicators("1", " "), subfields=[Subfield("a", "王珊,")]),
        Field(tag="245", indicators=Indicators("1", "0"),
              subfields=[Subfield("a", "数据库系统概论 :"), Subfield("b", "第5版 /"), Subfield("c", "王珊著.")]),
        Field(tag="264", indicators=Indicators(" ", "1"),
              subfields=[Subfield("a", "北京 :"), Subfield("b", "高等教育出版社,"), Subfield("c", "2014.")]),
        Field(tag="650", indicators=Indicators(" ", "0"), subfields=[Subfield("a", "数据库系统."), Subfield("2", "cct")]),
    )
    for item in items or ():
        rec.add_field(Field(tag="952", indicators=Indicators(" ", " "),
                            subfields=[Subfield(k, v) for k, v in item.items()]))
    return rec


ITEMS = [
    {"9": "100234", "p": "31001000123456", "a": "MAIN", "c": "STACKS", "o": "TP311.13/W123", "y": "BK", "d": "2024-03-01"},
    {"9": "100235", "p": "31001000123457", "a": "EAST", "c": "STACKS", "o": "TP311.13/W123", "y": "BK"},
]


def test_marc_dat_sample(data_dir, library):
    result = parse(data_dir / "samples" / "pymarc__marc.dat", library)
    rows = result.rows
    assert rows.schema == pl.Schema(BIB_SCHEMA)
    assert rows.height == 20 and result.rejects.height == 0
    first = rows.row(0, named=True)
    assert first == {
        "bib_id": "11778504", "title": "The pragmatic programmer : from journeyman to master",
        "author": "Hunt, Andrew", "publisher": "Addison-Wesley", "publication_year": 2000,
        "language": "eng", "isbn": "020161622X", "issn": None, "clc_class": None,
        "lc_class": "QA76.6", "dewey_class": "005.1", "subjects": ["Computer programming"],
        "source_line": 1,
    }
    lutz = rows.filter(pl.col("bib_id") == "12515882").row(0, named=True)
    assert lutz["title"] == "Programming Python"
    assert lutz["publication_year"] == 2001           # from `c2001.`
    assert lutz["lc_class"] == "QA76.73.P98"
    assert lutz["dewey_class"] == "005.133"           # `005.13/3`: segmentation mark dropped
    assert rows.get_column("source_line").to_list() == list(range(1, 21))
    assert result.metadata["items"].height == 0


def test_marcxml_sample(data_dir, library):
    result = parse(data_dir / "samples" / "pymarc__batch.xml", library)
    assert result.format == "marc21-marcxml"
    got = result.rows.select("bib_id", "title", "publication_year", "lc_class", "dewey_class")
    expected = pl.DataFrame({
        "bib_id": ["5637241", "12149120"], "title": ["The Great Ray Charles", "The White House"],
        "publication_year": [1957, 1994], "lc_class": ["Atlantic 1259", "F204.W5"],
        "dewey_class": [None, "975.3"],
    })
    assert_frame_equal(got, expected)
    assert result.rows.get_column("subjects")[1].to_list()[0] == "White House (Washington, D.C.)"


def test_hand_built_record_with_clc_and_items(tmp_path, library):
    path = tmp_path / "catalogue_2025-03-14.mrc"
    path.write_bytes(_record("B0001", ITEMS).as_marc())
    result, items = parse_marc(path, library)
    bib = result.rows.row(0, named=True)
    assert bib["clc_class"] == "TP311.13"
    assert bib["title"] == "数据库系统概论 : 第5版"
    assert bib["author"] == "王珊"
    assert bib["publisher"] == "高等教育出版社"
    assert (bib["publication_year"], bib["language"], bib["isbn"]) == (2014, "chi", "9787111123456")
    assert bib["subjects"] == ["数据库系统"]
    expected = pl.DataFrame({
        "item_number": [100234, 100235], "barcode": ["31001000123456", "31001000123457"],
        "bib_id": ["B0001", "B0001"], "home_branch": ["MAIN", "EAST"], "location": ["STACKS", "STACKS"],
        "call_number": ["TP311.13/W123", "TP311.13/W123"], "item_type": ["BK", "BK"],
        "acquired_date": [dt.date(2024, 3, 1), None], "source_line": [1, 1],
    }, schema=ITEM_SCHEMA)
    assert_frame_equal(items, expected)
    assert result.metadata["items"] is items


def test_damaged_records_are_quarantined_and_reading_goes_on(tmp_path, library):
    good = [_record(f"B{i}", [dict(ITEMS[0], **{"9": str(i)})]).as_marc() for i in range(1, 5)]
    bad_length = b"9x9x9" + good[1][5:]                    # a damaged leader length
    too_long = b"99999" + good[2][5:]                      # a length beyond the record
    bad_item = _record("B9", [dict(ITEMS[0], **{"9": "12a"})]).as_marc()
    path = tmp_path / "catalogue.mrc"
    path.write_bytes(good[0] + bad_length + too_long + good[3] + bad_item + good[0][:100])
    result = parse(path, library)
    assert result.rows.get_column("bib_id").to_list() == ["B1", "B4"]
    assert result.rows.get_column("source_line").to_list() == [1, 4]
    rejects = result.rejects
    assert rejects.get_column("source_line").to_list() == [2, 3, 5, 6]
    assert rejects.get_column("reason").to_list() == ["bad_record", "bad_record", "bad_number", "bad_record"]
    assert rejects.get_column("detail")[0].startswith(f"record at byte {len(good[0])}:")
    assert "952 $9" in rejects.get_column("detail")[2]
    assert rejects.get_column("raw_text")[0].startswith("9x9x9")
    assert result.metadata["items"].get_column("item_number").to_list() == [1, 4]
    assert result.rows_read == 6


def test_invalid_utf8_record_is_quarantined(tmp_path, library):
    rec = _record("B1").as_marc()
    broken = rec.replace("数据库".encode(), b"\xff" * 9)   # same length, not UTF-8
    path = tmp_path / "catalogue.mrc"
    path.write_bytes(rec + broken + rec)
    result = parse(path, library)
    assert result.rows.get_column("source_line").to_list() == [1, 3]
    assert result.rejects.get_column("reason").to_list() == ["bad_record"]
    assert "does not decode" in result.rejects.get_column("detail")[0]


def test_not_marc_raises(tmp_path, library):
    path = tmp_path / "catalogue.mrc"
    path.write_text("title,author\nfoo,bar\n")
    with pytest.raises(LandingFileError, match=r"catalogue\.mrc: is neither MARC21"):
        parse(path, library)




def test_generated_catalogue(tmp_path, library):
    for path, written in generated_files(tmp_path, library, "marc"):
        result = parse(path, library)
        assert result.rows_read == written.rows, path
        assert result.rejects.height == written.defects.get("bad_record", 0), path
        assert set(result.rejects.get_column("reason")) <= {"bad_record"}
        assert result.metadata["items"].height > 0
