"""Reading a landing text file within bounds, shared by every text parser.

The file streams through once: inflated (warehouse/textio.py), its encoding recognised from
the bytes (a UTF-8 or UTF-16 byte-order mark, else UTF-8, else GB18030 in a second pass),
turned into UTF-8 with ``\\n`` line endings, and cut into lines. A line longer than its
source's limit (``landing_limits.max_line_bytes``, warehouse/limits.py) is never held whole:
it is skipped to its end, counted, and left as an empty line, so line numbers stay those of
the file; its parser quarantines it as ``line_too_long`` with its length and at most its
first ``SHOWN`` characters. ``iter_landing_text`` hands the text on in batches of whole lines
(``BATCH_BYTES``, warehouse/limits.py), so memory is one batch whatever the file's size;
``read_landing_text`` holds the file's text. Time is linear in the size. A JSON document is
read whole (up to ``max_json_bytes``), as a JSON parser needs, and refused when a value is over
the limit.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from assets.parsing import REJECT_SCHEMA, ParseResult, Reason, empty_rejects
from warehouse.library import Library
from warehouse.limits import BATCH_BYTES, LandingLimits
from warehouse.textio import GZIP_MAGIC, LandingFileError, bom_of, iter_bytes, read_head

SHOWN = 200                     # characters of an over-long line an error or a quarantine row may quote
EMPTY = "empty"                 # ParseResult.metadata key: why a file holds nothing to load


@dataclass(frozen=True)
class LongLine:
    """A line over the limit: where it is, how long it was, and how it began."""

    number: int
    length: int                 # bytes, as UTF-8
    head: str                   # its first SHOWN characters


@dataclass
class LandingText:
    """A landing file as UTF-8 bytes, ``\\n`` line endings, no byte-order mark; over-long lines emptied."""

    path: Path
    source: str
    data: bytes
    encoding: str
    limit: int
    long_lines: list[LongLine] = field(default_factory=list)
    ends_with_newline: bool = True
    first_line: int = 1         # the file's number of the first line of ``data`` (a batch may start further on)

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")

    @property
    def blank(self) -> bool:
        """Nothing but white space (or nothing at all); a file of over-long lines is not blank."""
        return not self.long_lines and not self.data.strip()

    def too_long(self, line: LongLine) -> str:
        return (f"line of {line.length:,} bytes, over the limit of {self.limit:,} for {self.source} files "
                f"(landing_limits.max_line_bytes in the library config): not read")

    def rejects(self) -> pl.DataFrame:
        """One ``line_too_long`` reject per over-long line, quoting at most its first SHOWN characters."""
        if not self.long_lines:
            return empty_rejects()
        return pl.DataFrame({
            "source_line": [x.number for x in self.long_lines], "raw_text": [x.head for x in self.long_lines],
            "reason": [Reason.LINE_TOO_LONG.value] * len(self.long_lines),
            "detail": [self.too_long(x) for x in self.long_lines]}, schema=REJECT_SCHEMA)

    def note(self) -> str:
        """What an error about the file's structure should add when lines were left out."""
        if not self.long_lines:
            return ""
        first = self.long_lines[0]
        more = f" (and {len(self.long_lines) - 1} more)" if len(self.long_lines) > 1 else ""
        return f" Line {first.number}{more} was left out: {self.too_long(first)}."

    @contextmanager
    def explained(self):
        """A LandingFileError raised inside gains the note about lines left out."""
        try:
            yield
        except LandingFileError as exc:
            if not self.long_lines:
                raise
            raise LandingFileError(f"{exc}{self.note()}") from None

    def with_long_lines(self, result: ParseResult) -> ParseResult:
        """``result`` with the over-long lines among its rejects, in file order."""
        if self.long_lines:
            result.rejects = pl.concat([result.rejects.cast(REJECT_SCHEMA), self.rejects()]).sort("source_line")
        return result


def limits_of(library: Library | None) -> LandingLimits:
    return library.landing_limits if library is not None else LandingLimits()


def empty_result(fmt: str, encoding: str, why: str, schema: dict, metadata: dict | None = None) -> ParseResult:
    """A file with nothing to load (no bytes, or a header and no rows): ``why`` in its metadata."""
    return ParseResult(rows=pl.DataFrame(schema=schema), encoding=encoding, format=fmt,
                       metadata={**(metadata or {}), EMPTY: why})


NO_BYTES = "the file is empty"
HEADER_ONLY = "a header and no rows"


def sniff_text(path: Path, size: int = 4096) -> str:
    """The first characters of a text file (decoded as well as its first bytes allow), to tell formats apart."""
    head = read_head(path, size)
    encoding, skip = bom_of(head[:4])
    return head[skip:].decode(encoding or "utf-8", errors="ignore")


class _NotUtf8(Exception):
    def __init__(self, offset: int, line: int):
        self.offset, self.line = offset, line


def read_landing_text(path: Path, source: str, library: Library | None, whole: bool = False) -> LandingText:
    """The file as bounded UTF-8 text. ``whole``: a JSON document, read whole up to ``max_json_bytes``."""
    path = Path(path)
    limits = limits_of(library)
    try:
        return next(_read(path, source, limits, None, whole, None))
    except _NotUtf8 as not_utf8:
        try:
            return next(_read(path, source, limits, "gb18030", whole, None))
        except _NotUtf8:
            raise _neither(path, not_utf8) from None


def iter_landing_text(path: Path, source: str, library: Library | None,
                      batch_bytes: int | None = None) -> Iterator[LandingText]:
    """The file as bounded UTF-8 text in batches of whole lines of about ``batch_bytes`` each.

    Each batch's ``first_line`` is the file's number of its first line and its ``long_lines``
    those within it; only the last may lack a final newline. A file that may not be UTF-8 is
    checked first (one pass that keeps nothing), since a batch handed on cannot be taken back.
    """
    path, batch_bytes = Path(path), batch_bytes or BATCH_BYTES
    limits = limits_of(library)
    not_utf8 = _first_non_utf8(path, limits) if _may_span_batches(path, batch_bytes) else None
    try:
        yield from _read(path, source, limits, "gb18030" if not_utf8 else None, False, batch_bytes)
    except _NotUtf8 as not_utf8:      # before any batch was handed on: the file is one batch
        try:
            yield from _read(path, source, limits, "gb18030", False, batch_bytes)
        except _NotUtf8:
            raise _neither(path, not_utf8) from None


def _neither(path: Path, not_utf8: "_NotUtf8") -> LandingFileError:
    return LandingFileError(
        f"{path}: line {not_utf8.line}: bytes are neither UTF-8 nor GB18030 (at byte {not_utf8.offset}); "
        "re-export the file in UTF-8, GB18030 or Unicode text (UTF-16).")


def _may_span_batches(path: Path, batch_bytes: int) -> bool:
    head = read_head(path, 4)
    return bom_of(head)[0] is None and (head[:2] == GZIP_MAGIC or path.stat().st_size > batch_bytes)


def _first_non_utf8(path: Path, limits: LandingLimits) -> "_NotUtf8 | None":
    """Where the file first stops being UTF-8 (None: it is UTF-8 throughout)."""
    decoder, consumed, lines = codecs.getincrementaldecoder("utf-8")("strict"), 0, 0
    try:
        for piece in iter_bytes(path, limits.max_file_bytes):
            try:
                decoder.decode(piece)
            except UnicodeDecodeError as exc:
                return _NotUtf8(consumed + exc.start, lines + piece[:exc.start].count(b"\n") + 1)
            consumed += len(piece)
            lines += piece.count(b"\n")
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return _NotUtf8(consumed, lines + 1)
    return None


def _read(path: Path, source: str, limits: LandingLimits, fallback: str | None, whole: bool,
          batch_bytes: int | None) -> Iterator[LandingText]:
    limit = limits.line(source)
    cutter = _Lines(limit if not whole else None)
    decoder, encoding, consumed, raw_lines = None, "", 0, 0
    for piece in iter_bytes(path, limits.max_file_bytes):
        if decoder is None:
            bom, skip = bom_of(piece[:4])
            encoding = bom or fallback or "utf-8"
            decoder = codecs.getincrementaldecoder(encoding)("strict")
            piece = piece[skip:]
            consumed = skip
        try:
            text = decoder.decode(piece)
        except UnicodeDecodeError as exc:
            if encoding == "utf-8" and fallback is None:
                raise _NotUtf8(consumed + exc.start, raw_lines + piece[:exc.start].count(b"\n") + 1) from None
            raise LandingFileError(
                f"{path}: near line {raw_lines + cutter.lines + 1}: not {encoding.upper()} (at byte {consumed + exc.start}); "
                "save it again as UTF-8 or Unicode text.") from None
        consumed += len(piece)
        raw_lines += piece.count(b"\n")
        # UTF-8 that decoded is kept as it came; anything else is written out as UTF-8.
        cutter.feed(piece if encoding == "utf-8" else text.encode("utf-8"))
        if whole and cutter.size > limits.max_json_bytes:
            raise LandingFileError(
                f"{path}: a JSON answer of more than {limits.max_json_bytes:,} bytes (landing_limits.max_json_bytes in "
                "the library config); harvest it in shorter periods (a month at a time) or raise the limit.")
        if batch_bytes is not None and len(cutter.out) >= batch_bytes:
            first, data, long_lines = cutter.take()
            yield LandingText(path, source, data, encoding, limit, long_lines, True, first)
    if decoder is not None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            if encoding == "utf-8" and fallback is None:
                raise _NotUtf8(consumed, raw_lines + 1) from None
            raise LandingFileError(f"{path}: the last character is cut off (not {encoding.upper()}); "
                                   "ask for the file again.") from None
    ended = cutter.finish()
    first, data, long_lines = cutter.take()
    yield LandingText(path, source, data, encoding or "utf-8", limit, long_lines, ended, first)


class _Lines:
    """Collects UTF-8 pieces into text with ``\\n`` line endings, emptying lines over ``limit`` bytes."""

    def __init__(self, limit: int | None):
        self.limit, self.out, self.long_lines = limit, bytearray(), []
        self.pending = b""            # the start of a line not ended yet (at most `limit` bytes)
        self.skipping: list | None = None   # [number, length so far, head] of an over-long line being skipped
        self.lines = 0                # lines ended so far
        self.first = 1                # the file's number of the first line in `out`
        self.carry_cr = False
        self.last = b""

    @property
    def size(self) -> int:
        return len(self.out) + len(self.pending)

    def feed(self, piece: bytes) -> None:
        if not piece:
            return
        self.last = piece[-1:]
        if self.carry_cr:
            piece, self.carry_cr = b"\r" + piece, False
        if piece.endswith(b"\r"):
            piece, self.carry_cr = piece[:-1], True
        if b"\r" in piece:
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self.limit is None:
            self.out += piece
            return
        if self.skipping is not None:
            end = piece.find(b"\n")
            if end < 0:
                self.skipping[1] += len(piece)
                return
            self.skipping[1] += end
            self._long(*self.skipping)
            self.out += b"\n"
            self.lines += 1
            self.skipping, piece = None, piece[end + 1:]
        buf = self.pending + piece
        cut = buf.rfind(b"\n") + 1
        whole, tail = buf[:cut], buf[cut:]
        self._complete(whole)
        if len(tail) > self.limit:
            self.skipping, self.pending = [self.lines + 1, len(tail), tail[:SHOWN * 4]], b""
        else:
            self.pending = tail

    def _complete(self, whole: bytes) -> None:
        """Lines that end in ``whole``; a line over the limit must span one of the probes a limit apart."""
        start, kept, limit = 0, 0, self.limit
        while start + limit < len(whole):
            probe = start + limit
            line_start = whole.rfind(b"\n", start, probe) + 1 or start
            line_end = whole.find(b"\n", probe)
            if line_end - line_start > limit:
                number = self.lines + whole.count(b"\n", 0, line_start) + 1
                self._long(number, line_end - line_start, whole[line_start:line_start + SHOWN * 4])
                self.out += whole[kept:line_start]
                kept = line_end
            start = line_end + 1
        self.out += whole[kept:]
        self.lines += whole.count(b"\n")

    def _long(self, number: int, length: int, head: bytes) -> None:
        self.long_lines.append(LongLine(number, length, head.decode("utf-8", errors="ignore")[:SHOWN]))

    def take(self) -> tuple[int, bytes, list[LongLine]]:
        """The lines collected so far (whole ones, but after ``finish``), the first one's number and the
        over-long ones among them; the collector goes on empty from the next line."""
        first, data, long_lines = self.first, bytes(self.out), self.long_lines
        self.first, self.out, self.long_lines = self.lines + 1, bytearray(), []
        return first, data, long_lines

    def finish(self) -> bool:
        """Whether the file ended with a newline; the last line, ended or not, joins the collected ones."""
        if self.carry_cr:
            self.feed(b"\n")
        ended = self.last in (b"\n", b"\r") or not self.out and not self.pending and self.skipping is None
        if self.skipping is not None:
            self._long(*self.skipping)
            self.out += b"\n"
        elif self.pending:
            self.out += self.pending
        return ended


# A run of more characters than the limit between two quotes: a JSON string value that long
# (or a document that is not a report or loan answer at all).
def check_json_values(text: LandingText, what: str) -> None:
    """Refuse a JSON document holding a value over the source's limit, naming its line and length."""
    found = re.search(r'"[^"\n]{%d}' % (text.limit + 1), text.text)
    if found is None:
        return
    body = text.text
    end = body.find('"', found.end())
    length = len(body[found.start() + 1:end if end >= 0 else len(body)].encode("utf-8"))
    line = body.count("\n", 0, found.start()) + 1
    raise LandingFileError(
        f"{text.path}: line {line}: a JSON value of {length:,} bytes, over the limit of {text.limit:,} for "
        f"{text.source} files (landing_limits.max_line_bytes in the library config); is this a {what}? "
        "Ask for the answer again, or raise the limit if the value is genuine.")


def too_deep(path: Path) -> LandingFileError:
    """The error for JSON nested deeper than the JSON parser reaches (a RecursionError)."""
    return LandingFileError(
        f"{path}: JSON nested too deeply to be read (hundreds of levels; a report or loan answer has fewer than "
        "ten); this is not an answer of the system it is named after: ask for it again.")


def load_json(text: str, path: Path):
    """``json.loads``, with nesting too deep for the parser refused by name."""
    try:
        return json.loads(text)
    except RecursionError:
        raise too_deep(path) from None


class TableRows:
    """(line number, cells) of a delimited text, as ``csv.reader`` reads them; a row it cannot read
    (a quote opened and never closed swallowing the lines after it into one field over the limit)
    is rejected, and reading goes on at the next line."""

    def __init__(self, text: str, delimiter: str, limit: int = 1 << 20):
        csv.field_size_limit(max(csv.field_size_limit(), limit))
        self.reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        self.delimiter, self.errors = delimiter, []

    def __iter__(self):
        return self

    def __next__(self) -> tuple[int, list[str]]:
        while True:
            start = self.reader.line_num + 1
            try:
                row = next(self.reader)
            except csv.Error as exc:
                self.errors.append((start, f"the line cannot be split into fields ({str(exc)[:80]}): "
                                           "a quote opened and never closed?"))
                continue
            return self.reader.line_num, row

    def with_errors(self, result: ParseResult) -> ParseResult:
        if self.errors:
            rejected = pl.DataFrame({"source_line": [n for n, _ in self.errors], "raw_text": [None] * len(self.errors),
                                     "reason": [Reason.MALFORMED_LINE.value] * len(self.errors),
                                     "detail": [d for _, d in self.errors]}, schema=REJECT_SCHEMA)
            result.rejects = pl.concat([result.rejects.cast(REJECT_SCHEMA), rejected]).sort("source_line")
        return result


table_rows = TableRows
