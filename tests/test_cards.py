"""Where each landing format names the reader (its parser's ``CARDS``), and erasure dropping a
reader's lines by that declaration: other lines stay byte for byte."""

from __future__ import annotations

import importlib
import json

import pytest

from assets.csvparse import CsvLayout
from assets.feeds import FEEDS
from assets.privacy_assets import landing_rewriter

ERASED, KEPT = "2024100001", "2024100002"


def _is_erased(card: str | None) -> bool:
    return card == ERASED


def _rewrite(library, tmp_path, name: str, text: str) -> tuple[str, int]:
    path = tmp_path / name
    data = text.encode("utf-8")
    path.write_bytes(data)
    new, removed = landing_rewriter(library)(path, data, _is_erased)
    return new.decode("utf-8"), removed


def test_every_parser_declares_where_its_files_name_the_reader():
    for feed in FEEDS:
        for fmt in feed.formats:
            module = importlib.import_module(fmt.parser.split(":")[0])
            assert hasattr(module, "CARDS"), f"{module.__name__} declares no CARDS"


def test_each_csv_layouts_card_column_is_in_its_header():
    for feed in FEEDS:
        module = importlib.import_module(feed.parser.split(":")[0])
        for layout in (v for v in vars(module).values() if isinstance(v, CsvLayout)):
            assert layout.card is None or layout.card in layout.kept, layout.format


def test_koha_lines_of_the_reader_go_and_the_rest_stay_as_they_were(library, tmp_path):
    header = "datetime,branch,type,itemnumber,itemtype,location,cardnumber,ccode,categorycode\r\n"
    mine = f"2025-03-14 09:00:00,MAIN,issue,1,BK,STACK,{ERASED},GEN,UG\r\n"
    other = f"2025-03-14 09:05:00,MAIN,issue,2,BK,STACK,{KEPT},GEN,UG\r\n"
    broken = f"2025-03-14 09:06:00,MAIN,{ERASED}\r\n"      # no parse: found by its card-like token
    text, removed = _rewrite(library, tmp_path, "statistics_2025-03-14.csv", header + mine + other + broken)
    assert (text, removed) == (header + other, 2)


def test_turnstile_lines_go_by_the_card_column_and_counter_files_are_left_alone(library, tmp_path):
    header = "time,gate,direction,card,result\n"
    text, removed = _rewrite(library, tmp_path, "turnstile_2025-03-14.csv",
                             header + f"2025-03-14 08:00:00,G1,IN,{ERASED},PASS\n2025-03-14 08:01:00,G1,IN,{KEPT},PASS\n")
    assert (text, removed) == (header + f"2025-03-14 08:01:00,G1,IN,{KEPT},PASS\n", 1)
    counts = "timestamp,sensor,in_total,out_total\n2025-03-14 08:00:00,S1,10,2\n"
    assert _rewrite(library, tmp_path, "counter_2025-03-14.csv", counts) == (counts, 0)


def test_folio_loans_of_the_reader_leave_the_document_and_its_total(library, tmp_path):
    loans = [{"id": "a", "userId": "u-1", "borrower": {"barcode": ERASED}},
             {"id": "b", "userId": KEPT}]
    text, removed = _rewrite(library, tmp_path, "folio_loans_2025-03-14.json",
                             json.dumps({"loans": loans, "totalRecords": 2}))
    assert removed == 1
    assert json.loads(text) == {"loans": [loans[1]], "totalRecords": 1}


def test_folio_json_lines_of_the_reader_go_one_by_one(library, tmp_path):
    lines = [json.dumps({"id": "a", "userId": ERASED}) + "\n", json.dumps({"id": "b", "userId": KEPT}) + "\n"]
    assert _rewrite(library, tmp_path, "folio_loans_2025-03-14.jsonl", "".join(lines)) == (lines[1], 1)


def test_ezproxy_lines_go_by_the_logformat_user_field(library, tmp_path):
    line = '10.0.0.1 - {} [14/Mar/2025:10:02:03 +0800] "GET https://www.cnki.net/a HTTP/1.1" 200 512\n'
    text, removed = _rewrite(library, tmp_path, "ezproxy_2025-03-14.log", line.format(ERASED) + line.format(KEPT))
    assert (text, removed) == (line.format(KEPT), 1)


@pytest.mark.parametrize("name", ["catalogue_2025-03-14.xml", "CNKI_TR_2025-03.tsv"])
def test_files_that_name_no_reader_are_never_rewritten(library, tmp_path, name):
    text = f"nothing here but {ERASED}\n"
    assert _rewrite(library, tmp_path, name, text) == (text, 0)
