"""Bibliographic records and their items from a MARC21 catalogue export.

Reads ISO 2709 (``catalogue/catalogue_YYYY-MM-DD.mrc``, UTF-8 or MARC-8) and MARCXML,
recognised from the bytes. One bib row per record, one item row per Koha ``952`` field.
A record that does not decode, or whose fields cannot be typed, is quarantined whole
(bib and items together) with ``bad_record``, ``bad_number`` or ``bad_timestamp``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
from pymarc import MARCReader, Record, parse_xml_to_array
from pymarc.exceptions import FatalReaderError

from assets.parsing import REJECT_SCHEMA, ParseResult, Reason, RowRejected, row_schema
from warehouse.library import Library
from assets.reading import EMPTY, NO_BYTES, SHOWN, empty_result, limits_of
from warehouse.textio import UTF8_BOM, ByteStream, LandingFileError, bom_of, decode, iter_bytes, read_bytes, read_head

BIB_SCHEMA = row_schema("bib_record")
ITEM_SCHEMA = row_schema("item")
CARDS = None            # a catalogue names no reader

RECORD_TERMINATOR = b"\x1d"
SUBJECT_SEPARATOR = "\x1f"     # the MARC subfield delimiter: never inside a subfield value
RAW_TEXT_LIMIT = 4096          # bytes of a bad record kept in quarantine
MAX_RECORD_BYTES = 99_999      # the longest record a five-digit leader length can frame
BATCH_RECORDS = 20_000         # records per batch: about 20 MB of MARC, 40 MB of Python values
ISBD_TRAILING = " /:;,.=\t"    # punctuation that ends a field in ISBD, not part of the value
_YEAR = re.compile(r"\d{4}")
_DECLARED = re.compile(r"""(<\?xml[^>]*?encoding=["'])([^"']+)""")
_ISBN = re.compile(r"[0-9Xx][0-9Xx-]*")


def _clean(value: str | None, trailing: str = ISBD_TRAILING) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip(trailing).strip()
    return value or None


def _raw_text(chunk: bytes, length: int | None = None) -> str:
    """A bad record (``length`` bytes long, of which ``chunk`` is the start) as quarantine text:
    latin-1 keeps every byte visible and reversible."""
    length = len(chunk) if length is None else length
    # A chunk over the longest record ISO 2709 can frame is no record: only its start is kept.
    limit = RAW_TEXT_LIMIT if length <= MAX_RECORD_BYTES else SHOWN
    return chunk[:limit].decode("latin-1") + ("…" if length > limit else "")


class _Columns:
    """Bib and item columns built as Python lists, turned into frames once at the end."""

    def __init__(self) -> None:
        self.bib = {name: [] for name in BIB_SCHEMA}
        self.items = {name: [] for name in ITEM_SCHEMA}
        self.rejects = {name: [] for name in REJECT_SCHEMA}

    @property
    def records(self) -> int:
        return len(self.bib["bib_id"]) + len(self.rejects["source_line"])

    def reject(self, number: int, raw: str, reason: Reason, detail: str) -> None:
        for name, value in zip(REJECT_SCHEMA, (number, raw, str(reason), detail)):
            self.rejects[name].append(value)

    def add(self, record: Record, number: int) -> None:
        """Extract one record; raises RowRejected before anything is appended."""
        control: dict[str, str] = {}
        first: dict[str, list] = {}      # tag → subfields of its first occurrence
        clc = None
        subjects: list[str] = []
        items: list[list] = []
        for f in record.fields:
            tag = f.tag
            if tag < "010":
                control.setdefault(tag, f.data or "")
                continue
            subs = f.subfields
            if tag == "952":
                items.append(subs)
            elif tag in ("650", "651", "600", "610"):
                for code, value in subs:
                    if code == "a" and (s := _clean(value)) and s not in subjects:
                        subjects.append(s)
            elif tag == "084":
                # 084 holds any classification; only `$2 clc` is 中图法.
                if clc is None and any(c == "2" and v.strip().lower() == "clc" for c, v in subs):
                    clc = next((v.strip() for c, v in subs if c == "a"), None)
            elif tag not in first:
                first[tag] = subs

        def sub(tags: tuple[str, ...], code: str) -> str | None:
            for tag in tags:
                for c, v in first.get(tag, ()):
                    if c == code and v.strip():
                        return v
            return None

        bib_id = (control.get("001") or "").strip()
        if not bib_id:
            raise RowRejected(Reason.MISSING_REQUIRED, "001 (record id) is missing or empty")
        f008 = control.get("008", "")
        year = None
        imprint = "264" if "264" in first else "260"
        if (m := _YEAR.search(sub((imprint,), "c") or "")) is not None:
            year = int(m.group())
        elif f008[7:11].isdigit():
            year = int(f008[7:11])
        language = f008[35:38].strip(" |\\") or None
        isbn = None
        if (raw_isbn := sub(("020",), "a")) and (m := _ISBN.match(raw_isbn.strip())):
            isbn = m.group().replace("-", "").upper()
        title_a, title_b = sub(("245",), "a"), sub(("245",), "b")
        title = _clean(" ".join(p.strip() for p in (title_a, title_b) if p))
        dewey = _clean(sub(("082", "092"), "a"))
        row = (
            bib_id, title, _clean(sub(("100",), "a"), " ,:;/"),
            _clean(sub((imprint,), "b"), " ,:;/"), year, language, isbn,
            _clean(sub(("022",), "a")), clc, _clean(sub(("050", "090"), "a"), " "),
            # Dewey's `/` marks where a number may be cut; it is not part of the class.
            dewey.replace("/", "") if dewey else None,
            subjects, number,
        )
        item_rows = [self._item(subs, bib_id, number, i) for i, subs in enumerate(items, 1)]
        for name, value in zip(BIB_SCHEMA, row):
            self.bib[name].append(value)
        for item in item_rows:
            for name, value in zip(ITEM_SCHEMA, item):
                self.items[name].append(value)

    @staticmethod
    def _item(subs: list, bib_id: str, number: int, nth: int) -> tuple:
        values: dict[str, str] = {}
        for code, value in subs:
            if value.strip():
                values.setdefault(code, value.strip())
        item_number = values.get("9")
        if item_number is not None:
            if not item_number.isdigit():
                raise RowRejected(Reason.BAD_NUMBER, f"952 $9 (item {nth}): {item_number!r} is not a whole number")
            item_number = int(item_number)
        acquired = values.get("d")
        if acquired is not None:
            try:
                acquired = dt.date.fromisoformat(acquired)
            except ValueError:
                raise RowRejected(Reason.BAD_TIMESTAMP,
                                f"952 $d (item {nth}): {acquired!r} is not a date (YYYY-MM-DD)") from None
        return (item_number, values.get("p"), bib_id, values.get("a"), values.get("c"),
                values.get("o"), values.get("y"), acquired, number)


def _read_iso2709(stream: ByteStream) -> Iterator[_Columns]:
    """Read records with pymarc as the file streams by, quarantining those it cannot decode; the
    records a ``BATCH_RECORDS`` at a time.

    pymarc stops for good after a damaged length or a missing terminator; the bytes it read for
    that record go back, the record runs to the next record terminator (only its start kept), and
    a new reader starts there, so one bad record costs only itself.
    """
    cols, number = _Columns(), 0
    while True:
        # Strict UTF-8: a record with bytes that are not what its leader says is quarantined,
        # not silently given replacement characters. MARC-8 records (leader/09 blank) are converted.
        reader = MARCReader(stream, to_unicode=True, force_utf8=False, utf8_handling="strict")
        start, fatal = stream.offset, None
        for record in reader:
            number += 1
            if record is not None:
                try:
                    cols.add(record, number)
                except RowRejected as bad:
                    cols.reject(number, _raw_text(reader.current_chunk), bad.reason, f"record at byte {start}: {bad.detail}")
            elif isinstance(reader.current_exception, FatalReaderError):
                fatal = reader.current_exception
                break
            else:
                exc = reader.current_exception
                cols.reject(number, _raw_text(reader.current_chunk or b""), Reason.BAD_RECORD,
                            f"record at byte {start}: does not decode ({type(exc).__name__}: {exc})"[:500])
            start = stream.offset
            if cols.records >= BATCH_RECORDS:
                yield cols
                cols = _Columns()
        if fatal is None:
            break
        stream.unread(reader.current_chunk or b"")
        head, length, blank = stream.read_through(RECORD_TERMINATOR, RAW_TEXT_LIMIT)
        if blank:
            number -= 1            # trailing padding after the last record, not a record
        else:
            cols.reject(number, _raw_text(head, length), Reason.BAD_RECORD,
                        f"record at byte {start}: leader length {head[:5]!r} does not frame a "
                        f"record ({type(fatal).__name__})")
    yield cols


def _utf8_xml(path: Path, data: bytes) -> bytes:
    """MARCXML in UTF-16 or GB18030 as UTF-8 (the XML parser knows no GB18030), its declaration to match."""
    declared = _DECLARED.match(data[:200].removeprefix(UTF8_BOM).decode("latin-1"))
    if bom_of(data[:4])[0] in (None, "utf-8") and declared is not None and \
            declared.group(2).lower().replace("-", "") not in ("gb18030", "gbk", "gb2312", "utf8"):
        return data                                  # another declared encoding: the XML parser reads it
    text, _ = decode(data, path)
    return _DECLARED.sub(r"\1UTF-8", text, count=1).encode("utf-8")


def _read_marcxml(path: Path, data: bytes, cols: _Columns) -> None:
    data = _utf8_xml(path, data)
    try:
        records = parse_xml_to_array(io.BytesIO(data), strict=False)
    except Exception as exc:  # noqa: BLE001 - the XML parser raises several types; all mean the same here
        raise LandingFileError(f"{path}: is not well-formed MARCXML ({exc}); ask for the export again.") from None
    for number, record in enumerate(records, 1):
        try:
            cols.add(record, number)
        except RowRejected as bad:
            cols.reject(number, record.as_marc().decode("latin-1")[:RAW_TEXT_LIMIT], bad.reason,
                        f"record {number}: {bad.detail}")


def sniff(data: bytes) -> str:
    """``"iso2709"``, ``"marcxml"`` or ``""`` (neither), from the first bytes."""
    encoding, skip = bom_of(data[:4])
    if encoding not in (None, "utf-8"):        # MARCXML saved as UTF-16: the XML parser reads its mark
        start = data[skip:4096 + skip].decode(encoding, errors="ignore").lstrip()
        return "marcxml" if start.startswith("<") and ("marc" in start.lower() or "<record" in start) else ""
    head = data[:512].removeprefix(UTF8_BOM).lstrip()
    if head.startswith(b"<"):
        return "marcxml" if b"marc" in data[:4096].lower() or b"<record" in data[:4096] else ""
    if len(head) >= 24 and data[:5].isdigit():
        return "iso2709"
    return ""


def parse_batches(path: Path, library: Library) -> Iterator[ParseResult]:
    """Bib rows (with rejects and the items in ``metadata["items"]``), ``BATCH_RECORDS`` records at a time:
    ISO 2709 streams through (memory is one batch, whatever the file's size); MARCXML is read whole."""
    path = Path(path)
    limit = limits_of(library).max_file_bytes
    kind = sniff(read_head(path, 4096))
    if not kind:
        if all(not piece.strip(b"\r\n\t \x00\x1a" + UTF8_BOM) for piece in iter_bytes(path, limit)):
            yield empty_result("marc21", "utf-8", NO_BYTES, BIB_SCHEMA, {"items": pl.DataFrame(schema=ITEM_SCHEMA)})
            return
        raise LandingFileError(
            f"{path}: is neither MARC21 ISO 2709 (five-digit record length first) nor MARCXML; "
            "export the catalogue as MARC21 (.mrc) or MARCXML.")
    if kind == "iso2709":
        batches = _read_iso2709(ByteStream(path, limit))
    else:
        cols = _Columns()
        _read_marcxml(path, read_bytes(path, limit), cols)
        batches = iter([cols])
    found = False
    for cols in batches:
        if cols.records:
            found = True
            yield _result(cols, kind)
    if not found:
        result = _result(_Columns(), kind)
        result.metadata[EMPTY] = "a catalogue export without records"
        yield result


def _result(cols: _Columns, kind: str) -> ParseResult:
    # Subjects travel as one joined string per record and are split once, vectorised:
    # a list column built row by row from Python lists costs more than the whole extraction.
    bib = dict(cols.bib, subjects=[SUBJECT_SEPARATOR.join(s) for s in cols.bib["subjects"]])
    bibs = pl.DataFrame(bib, schema=dict(BIB_SCHEMA, subjects=pl.Utf8)).with_columns(
        pl.when(pl.col("subjects") == "").then(pl.lit([], BIB_SCHEMA["subjects"]))
        .otherwise(pl.col("subjects").str.split(SUBJECT_SEPARATOR)).alias("subjects"))
    items = pl.DataFrame(cols.items, schema=ITEM_SCHEMA)
    rejects = pl.DataFrame(cols.rejects, schema=REJECT_SCHEMA)
    return ParseResult(rows=bibs, rejects=rejects, encoding="utf-8", format=f"marc21-{kind}",
                       metadata={"items": items, "records_read": bibs.height + rejects.height})


def parse_marc(path: Path, library: Library) -> tuple[ParseResult, pl.DataFrame]:
    """Bib rows (with rejects) and the items frame from one catalogue file, whole."""
    batches = list(parse_batches(path, library))
    if len(batches) == 1:
        return batches[0], batches[0].metadata["items"]
    items = pl.concat([b.metadata["items"] for b in batches])
    result = ParseResult(rows=pl.concat([b.rows for b in batches]), rejects=pl.concat([b.rejects for b in batches]),
                         encoding="utf-8", format=batches[-1].format,
                         metadata={"items": items, "records_read": sum(b.metadata["records_read"] for b in batches)})
    return result, items


def parse(path: Path, library: Library) -> ParseResult:
    """Bib rows in ``rows``; the items frame in ``metadata["items"]``."""
    return parse_marc(path, library)[0]
