"""Gate files: turnstile events and people-counter totals, told apart by their header."""

from __future__ import annotations

import datetime as dt
import gzip

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.gates.exports import parse, parse_counter, parse_turnstile
from warehouse.textio import LandingFileError

TURNSTILE = "time,gate,direction,card,result"
COUNTER = "timestamp,sensor,in_total,out_total"


def _write(tmp_path, name, lines, *, end="\n", gz=False, final_newline=True):
    data = (end.join(lines) + (end if final_newline else "")).encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_turnstile_rows(tmp_path, library):
    lines = [TURNSTILE, "2025-03-14 08:00:03,MAIN-G1,IN,2023104512,PASS", "2025-03-14 08:00:09,MED-G1,OUT,,DENY"]
    result = parse_turnstile(_write(tmp_path, "turnstile_2025-03-14.csv.gz", lines, gz=True), library)
    expected = pl.DataFrame({
        "event_at": [dt.datetime(2025, 3, 14, 8, 0, 3), dt.datetime(2025, 3, 14, 8, 0, 9)],
        "event_date": [dt.date(2025, 3, 14)] * 2, "gate_code": ["MAIN-G1", "MED-G1"],
        "direction": ["IN", "OUT"], "result": ["PASS", "DENY"], "card_number": ["2023104512", None],
        "source_line": [2, 3],
    }, schema={"event_at": pl.Datetime("us"), "event_date": pl.Date, "gate_code": pl.Utf8, "direction": pl.Utf8,
               "result": pl.Utf8, "card_number": pl.Utf8, "source_line": pl.Int64})
    assert_frame_equal(result.rows, expected)
    assert result.format == "turnstile-csv"


def test_turnstile_rejects(tmp_path, library):
    lines = [
        TURNSTILE,
        "2025-03-14 08:00:03,MAIN-G9,IN,2023104512,PASS",      # 2 gate not in the config
        "2025-03-14 08:00:03,MAIN-G1,UP,2023104512,PASS",      # 3
        "2025-03-14 08:00:03,MAIN-G1,IN,2023104512,OK",        # 4
        "2025-03-14 08:00:03,MAIN-G1,IN,,PASS",                # 5 a passage without a card
        "2025-03-14 8h00,MAIN-G1,IN,2023104512,PASS",          # 6
        '2025-03-14 08:00:03,"MAIN-G1,IN",2023104512,PASS',    # 7 a quoted comma: 4 fields
        "2025-03-14 08:00:03,MAIN-G1",                         # 8 cut off
    ]
    result = parse_turnstile(_write(tmp_path, "t.csv", lines, end="\r\n", final_newline=False), library)
    assert dict(zip(result.rejects["source_line"], result.rejects["reason"])) == {
        2: "unknown_code", 3: "unknown_code", 4: "unknown_code", 5: "missing_required", 6: "bad_timestamp",
        7: "malformed_line", 8: "truncated_line"}
    assert result.rows.height == 0 and result.rows_read == 7
    assert not result.rejects["detail"].str.contains("2023104512").any()


def test_counter_rows_and_rejects(tmp_path, library):
    lines = [
        COUNTER,
        "2025-03-14 08:15:00,MAIN-S1,132,17",
        "2025-03-14 08:15:00,MAIN-S9,1,1",                      # 3
        "2025-03-14 08:15:00,MAIN-S2,-4,0",                     # 4
        "2025-03-14 08:15:00,MAIN-S2,12,seven",                 # 5
        "2025-03-14 08:15:00,MAIN-S2,,0",                       # 6
        "2025-03-14 08:15:00,MAIN-S2,1",                        # 7 short, with a newline after it
        "",
    ]
    result = parse_counter(_write(tmp_path, "counter_2025-03-14.csv", lines), library)
    expected = pl.DataFrame({
        "counted_at": [dt.datetime(2025, 3, 14, 8, 15)], "event_date": [dt.date(2025, 3, 14)],
        "sensor_code": ["MAIN-S1"], "in_total": [132], "out_total": [17], "source_line": [2],
    }, schema={"counted_at": pl.Datetime("us"), "event_date": pl.Date, "sensor_code": pl.Utf8,
               "in_total": pl.Int64, "out_total": pl.Int64, "source_line": pl.Int64})
    assert_frame_equal(result.rows, expected)
    assert dict(zip(result.rejects["source_line"], result.rejects["reason"])) == {
        3: "unknown_code", 4: "bad_number", 5: "bad_number", 6: "missing_required", 7: "malformed_line"}
    assert result.format == "people-counter-csv"


def test_parse_tells_the_two_kinds_apart(tmp_path, library):
    turnstile = _write(tmp_path, "a.csv", [TURNSTILE, "2025-03-14 08:00:03,MAIN-G1,IN,2023104512,PASS"], gz=True)
    counter = _write(tmp_path, "b.csv", [" timestamp , sensor,in_total,out_total", "2025-03-14 08:15:00,MAIN-S1,1,0"],
                     end="\r\n")
    assert parse(turnstile, library).format == "turnstile-csv"
    assert parse(counter, library).format == "people-counter-csv"
    assert_frame_equal(parse(counter, library).rows, parse_counter(counter, library).rows)


def test_an_unknown_header_names_both_expected(tmp_path, library):
    path = _write(tmp_path, "c.csv", ["when,where,how_many", "2025-03-14 08:15:00,MAIN-S1,1"])
    with pytest.raises(LandingFileError, match=r"c\.csv: line 1: the header 'when,where,how_many' is neither") as error:
        parse(path, library)
    assert TURNSTILE in str(error.value) and COUNTER in str(error.value)
    with pytest.raises(LandingFileError, match=r"line 1: .*missing columns time, gate, direction, card, result"):
        parse_turnstile(path, library)
    headerless = _write(tmp_path, "d.csv", ["2025-03-14 08:00:03,MAIN-G1,IN,2023104512,PASS"])
    with pytest.raises(LandingFileError, match=r"the header '2025-03-14 08:00:03,MAIN-G1,IN,<card number>,PASS'"):
        parse(headerless, library)


def test_generated_landing_defects_are_all_found(tmp_path_factory, library):
    import generator
    from assets.csvparse import duplicate_rows

    landing = tmp_path_factory.mktemp("landing")
    report = generator.generate(landing, library, scale="tiny", seed=42, start=dt.date(2025, 9, 1), days=7)
    results = [parse(f, library) for f in sorted((landing / "gates").iterdir())]
    assert {r.format for r in results} == {"turnstile-csv", "people-counter-csv"}
    found = dict(pl.concat([r.rejects for r in results]).group_by("reason").len().iter_rows())
    expected = report.defects_by_source()["gates"]
    assert found == {k: v for k, v in expected.items() if k in ("malformed_line", "bad_timestamp", "truncated_line")}
    assert sum(duplicate_rows(r.rows) for r in results) == expected.get("duplicate_row", 0)
    assert sum(r.rows_read for r in results) == report.rows_by_source()["gates"]
