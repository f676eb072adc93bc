"""Where a landing format carries the reader's card number, and a reader's lines dropped by it.

Every parser module declares ``CARDS``: the field its format names the reader in (a CSV
column, an EZproxy LogFormat field, a FOLIO loan's borrower), or None when its files name no
reader (MARC, COUNTER). The parser reads the card from there; erasure finds the lines of the
reader it erases by the same declaration, so the two cannot disagree. A line that does not
parse is the reader's when a card of theirs appears anywhere in it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Callable

from warehouse.library import Library
from warehouse.textio import bom_of, decode

# Per line of a file: the card it names, every card-like token of a line that does not parse, or None.
LineCards = list[str | list[str] | None]
IsCard = Callable[[str | None], bool]
DELIMITERS = ",;\t|"
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")     # a line with its ending, as assets/reading.py cuts them


class CardField:
    """How one landing format names the reader; subclasses say where the card is in a line."""

    def cards(self, path: Path, lines: list[str], library: Library) -> LineCards:
        raise NotImplementedError

    def without_reader(self, path: Path, data: bytes, is_card: IsCard, library: Library) -> tuple[bytes, int]:
        """The file's bytes without the lines naming a card ``is_card`` accepts (others byte for
        byte as they were, in the file's encoding, after its byte-order mark), and how many lines went."""
        text, encoding = decode(data, path)
        head, raw_lines, lines = b"", data.splitlines(keepends=True), None
        if encoding.startswith("utf-16"):
            # A byte 0x0A or 0x0D of UTF-16 may be half of any character (上 is 0A 4E): the lines are cut in
            # the text, with the line endings the parsers know, and written back in UTF-16 after the mark.
            head, lines = data[:bom_of(data[:4])[1]], LINE.findall(text)
            raw_lines = [line.encode(encoding) for line in lines]
        else:
            lines = [line.decode(encoding, errors="replace") for line in raw_lines]
        cards = self.cards(path, lines, library)
        drop = [any(is_card(c) for c in card) if isinstance(card, list) else is_card(card) for card in cards]
        if not any(drop):
            return data, 0
        return head + b"".join(raw for raw, gone in zip(raw_lines, drop) if not gone), sum(drop)


class CsvCard(CardField):
    """The card column of a CSV export, as its layouts declare it (``CsvLayout.card``)."""

    def __init__(self, *columns: str | None) -> None:
        self.columns = tuple(c for c in columns if c)

    def cards(self, path: Path, lines: list[str], library: Library) -> LineCards:
        card_pattern = library.card_regex()
        header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
        if header_at is None:
            return [None] * len(lines)
        header_line = lines[header_at].lstrip("\ufeff").rstrip("\r\n")
        delimiter = max(DELIMITERS, key=header_line.count)
        header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter))]
        column = next((header.index(c) for c in self.columns if c in header), None)
        cards: LineCards = []
        for i, line in enumerate(lines):
            text = line.rstrip("\r\n")
            if column is not None and i == header_at:
                cards.append(None)
                continue
            fields = next(csv.reader([text], delimiter=delimiter), []) if column is not None else []
            if column is not None and len(fields) == len(header):
                cards.append(fields[column])
            else:   # headerless or malformed: a card of this reader anywhere in the line makes it theirs
                cards.append(card_pattern.findall(text))
        return cards

