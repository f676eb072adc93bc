"""Koha holds (reserves) parser: typed holds, title- and item-level, and every reject reason."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.circulation.holds import FOLIO_ONLY, parse
from warehouse.textio import LandingFileError

HEADER = "timestamp,reserve_id,branchcode,cardnumber,biblionumber,itemnumber"


def _write(tmp_path, lines, *, final_newline=True):
    path = tmp_path / "holds_2025-10-10.csv"
    path.write_bytes(("\n".join(lines) + ("\n" if final_newline else "")).encode("utf-8"))
    return path


def test_title_and_item_level_holds(tmp_path, library):
    result = parse(_write(tmp_path, [
        HEADER,
        "2025-10-10 08:09:25,2685,MAIN,2023104512,DUL00004039,",
        "2025-10-10 09:00:00,2686,EAST,2022070005, DUL00010011 ,100234",
    ]), library)
    expected = pl.DataFrame({
        "placed_at": [dt.datetime(2025, 10, 10, 8, 9, 25), dt.datetime(2025, 10, 10, 9)],
        "event_date": [dt.date(2025, 10, 10)] * 2, "reserve_id": ["2685", "2686"],
        "pickup_branch_code": ["MAIN", "EAST"], "bib_id": ["DUL00004039", "DUL00010011"],
        "item_number": [None, 100234], "card_number": ["2023104512", "2022070005"], "source_line": [2, 3],
    }, schema={"placed_at": pl.Datetime("us"), "event_date": pl.Date, "reserve_id": pl.Utf8,
               "pickup_branch_code": pl.Utf8, "bib_id": pl.Utf8, "item_number": pl.Int64, "card_number": pl.Utf8,
               "source_line": pl.Int64})
    assert_frame_equal(result.rows.drop(FOLIO_ONLY), expected)
    assert result.rows.select(FOLIO_ONLY).null_count().row(0) == (2,) * len(FOLIO_ONLY)
    assert result.format == "koha-reserves-csv"


def test_each_reason(tmp_path, library):
    result = parse(_write(tmp_path, [
        HEADER,
        "2025-10-10 08:09:25,1,MAIN,2023104512,DUL00000001,",       # 2 ok
        "2025-10-10 08:09:25,2,MAIN,,DUL00000001,",                 # 3 no reader
        "2025-10-10 08:09:25,3,NOWHERE,2023104512,DUL00000001,",    # 4 unknown branch
        "2025-10-10 08:09:25,x,MAIN,2023104512,DUL00000001,",       # 5 bad id
        "2025-10-10 08:09:25,6,MAIN,2023104512,DUL00000001,0",      # 6 bad item
        "2025-13-10 08:09:25,7,MAIN,2023104512,DUL00000001,",       # 7 bad time
        "2025-10-10 08:09:25,8,MAIN,2023104512,,",                  # 8 no record
        "2025-10-10 08:09:25,9,MAIN,2023104512",                    # 9 cut off
    ], final_newline=False), library)
    assert result.rows["reserve_id"].to_list() == ["1"]
    assert dict(zip(result.rejects["source_line"], result.rejects["reason"])) == {
        3: "missing_required", 4: "unknown_code", 5: "bad_number", 6: "bad_number", 7: "bad_timestamp",
        8: "missing_required", 9: "truncated_line"}
    # The reject names the column, never the card.
    assert all("2023104512" not in d for d in result.rejects["detail"].to_list())


def test_wrong_header_names_the_columns(tmp_path, library):
    with pytest.raises(LandingFileError, match=r"line 1: .*missing columns biblionumber"):
        parse(_write(tmp_path, [HEADER.replace("biblionumber", "biblio"), "x"]), library)


def test_generated_landing_defects_are_all_found(tmp_path, library):
    from assets.csvparse import duplicate_rows
    from tests.generated import generated_files

    files = generated_files(tmp_path, library, "holds")
    results = [parse(path, library) for path, _ in files]
    found = dict(pl.concat([r.rejects for r in results]).group_by("reason").len().iter_rows())
    expected: dict[str, int] = {}
    for _, f in files:
        for kind, n in f.defects.items():
            expected[kind] = expected.get(kind, 0) + n
    assert found == {k: v for k, v in expected.items() if k in ("malformed_line", "bad_timestamp", "truncated_line")}
    assert sum(duplicate_rows(r.rows) for r in results) == expected.get("duplicate_row", 0)
    assert sum(r.rows_read for r in results) == sum(f.rows for _, f in files)
    assert sum(r.rows.height for r in results) > 0
