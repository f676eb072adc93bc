"""What logs and the quarantine keep of a reader: no card number, whole or cut off, no pseudonym."""

from __future__ import annotations

import re

import polars as pl
import pytest

from warehouse.guard import guard
from warehouse.guarded import log_access
from warehouse.log_redaction import redact_logged
from warehouse.pseudonym import CARD_CUT, FILLERS, TAIL, Pseudonymiser, cut_card_tail
from warehouse.settings import Settings

CARD = r"\b[0-9]{10}\b"
PID = "3f" * 32


def test_a_card_number_cut_off_at_the_end_of_a_quarantined_line_is_removed(tmp_path):
    scrub = Pseudonymiser(key=b"k" * 32, version=1).scrub
    lines = pl.Series(["2025-09-01,loan,B1,20230451", "2025-09-01,loan,B1,2023045123,extra", "2025-09-01,loan,B1"])
    cut, whole, short = scrub(lines, CARD, cut_tail=True).to_list()
    assert cut == f"2025-09-01,loan,B1,{CARD_CUT}"
    assert "2023045123" not in whole and re.search(r"pid:[0-9a-f]{64},extra$", whole)
    assert short == "2025-09-01,loan,B1"
    assert scrub(lines, CARD).to_list()[0].endswith("20230451")      # alerts and details are not cut


def test_pseudonyms_and_cards_are_redacted_in_logged_sql_and_reasons(tmp_path):
    settings = Settings(tmp_path / "home").ensure()
    assert redact_logged(f"x = '{PID.upper()}' or c = '2023045123'", re.compile(CARD)) == \
        "x = '<pseudonym>' or c = '<card number>'"
    log_access(settings, role="analyst", user="u", sql=f"SELECT * FROM core.fact_loan WHERE patron_pid = '{PID}'",
               decision=guard("SELECT 1", "analyst"), outcome="failed", rows_returned=None,
               reason=f"query failed: could not convert '{PID}'")
    (row,) = pl.read_parquet(next(settings.lake.rglob("access_log/**/*.parquet"))).to_dicts()
    assert PID not in str(row) and "<pseudonym>" in row["sql_text"] and "<pseudonym>" in row["reason"]


@pytest.mark.parametrize("pattern", [r"\b[0-9]{10}\b", r"\bDU[0-9]{6}[0-9X]\b", r"[0-9]{8,12}", r"\b[0-9]+\b"])
def test_a_card_cut_at_the_end_is_found_trying_no_longer_completions_than_a_card(pattern):
    card = re.compile(pattern)

    def every_completion(text: str) -> str:      # completed as far as half the tail, every time
        start = max(0, len(text) - TAIL)
        tail = text[start:]
        for filler in FILLERS:
            for extra in range(1, TAIL // 2 + 1):
                for match in card.finditer(tail + filler * extra):
                    if match.start() < len(tail) < match.end():
                        return text[:start + match.start()] + CARD_CUT
        return text
    lines = [f'1.2.3.4 - {"2024100001"[:n]}' for n in range(11)] + [
        '1.2.3.4 - 2024100001 [01/Sep/2025:10:00:00 +0800] "GET http://x.org/a?id=20241', "DU12345", "abc 99"]
    for line in lines:
        assert cut_card_tail(line, card) == every_completion(line), line
