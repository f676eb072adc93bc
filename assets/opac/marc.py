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
from pathlib import Path

import polars as pl
from pymarc import MARCReader, Record, parse_xml_to_array
from pymarc.exceptions import FatalReaderError

from assets.parsing import REJECT_SCHEMA, ParseResult, Reason, RowRejected, row_schema
from warehouse.library import Library
from assets.reading import EMPTY, NO_BYTES, SHOWN, empty_result, limits_of
from warehouse.textio import UTF8_BOM, LandingFileError, bom_of, decode, read_bytes

BIB_SCHEMA = row_schema("bib_record")
ITEM_SCHEMA = row_schema("item")
CARDS = None            # a catalogue names no reader

RECORD_TERMINATOR = b"\x1d"
SUBJECT_SEPARATOR = "\x1f"     # the MARC subfield delimiter: never inside a subfield value
RAW_TEXT_LIMIT = 4096          # bytes of a bad record kept in quarantine
MAX_RECORD_BYTES = 99_999      # the longest record a five-digit leader length can frame
ISBD_TRAILING = " /:;,.=\t"    # punctuation that ends a field in ISBD, not part of the value
_YEAR = re.compile(r"\d{4}")
_DECLARED = re.compile(r"""(<\?xml[^>]*?encoding=["'])([^"']+)""")
_ISBN = re.compile(r"[0-9Xx][0-9Xx-]*")


def _clean(value: str | None, trailing: str = ISBD_TRAILING) -> str | None:
    if value is None:
        return None
    value = value.strip().rstrip(trailing).strip()
    return value or None


def _raw_text(chunk: bytes) -> str:
    """A bad record as quarantine text: latin-1 keeps every byte visible and reversible."""
    # A chunk over the longest record ISO 2709 can frame is no record: only its start is kept.
    limit = RAW_TEXT_LIMIT if len(chunk) <= MAX_RECORD_BYTES else SHOWN
    return chunk[:limit].decode("latin-1") + ("…" if len(chunk) > limit else "")


class _Columns:
    """Bib and item columns built as Python lists, turned into frames once at the end."""

    def __init__(self) -> None:
        self.bib = {name: [] for name in BIB_SCHEMA}
        self.items = {name: [] for name in ITEM_SCHEMA}
        self.rejects = {name: [] for name in REJECT_SCHEMA}

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


def _read_iso2709(data: bytes, cols: _Columns) -> None:
    """Read records with pymarc, quarantining those it cannot decode.

    pymarc stops for good after a damaged length or a missing terminator; we then skip to
    the next record terminator and start a new reader there, so one bad record costs
    only itself.
    """
    offset, number = 0, 0
    while offset < len(data):
        stream = io.BytesIO(data)
        stream.seek(offset)
        # Strict UTF-8: a record with bytes that are not what its leader says is quarantined,
        # not silently given replacement characters. MARC-8 records (leader/09 blank) are converted.
        reader = MARCReader(stream, to_unicode=True, force_utf8=False, utf8_handling="strict")
        start = offset
        for record in reader:
            number += 1
            if record is not None:
                try:
                    cols.add(record, number)
                except RowRejected as bad:
                    chunk = data[start:stream.tell()]
                    cols.reject(number, _raw_text(chunk), bad.reason, f"record at byte {start}: {bad.detail}")
                start = stream.tell()
                continue
            exc = reader.current_exception
            if isinstance(exc, FatalReaderError):
                end = data.find(RECORD_TERMINATOR, start)
                end = len(data) if end < 0 else end + 1
                chunk = data[start:end]
                if chunk.strip(b"\r\n\x00 \x1a") == b"":
                    number -= 1            # trailing padding after the last record, not a record
                else:
                    cols.reject(number, _raw_text(chunk), Reason.BAD_RECORD,
                                f"record at byte {start}: leader length {chunk[:5]!r} does not frame a "
                                f"record ({type(exc).__name__})")
                offset = end
                break
            chunk = reader.current_chunk or b""
            cols.reject(number, _raw_text(chunk), Reason.BAD_RECORD,
                        f"record at byte {start}: does not decode ({type(exc).__name__}: {exc})"[:500])
            start = stream.tell()
        else:
            offset = len(data)


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


def parse_marc(path: Path, library: Library) -> tuple[ParseResult, pl.DataFrame]:
    """Bib rows (with rejects) and the items frame from one catalogue file."""
    path = Path(path)
    data = read_bytes(path, limits_of(library).max_file_bytes)
    if not data.strip(b"\r\n\t \x00\x1a" + UTF8_BOM):
        result = empty_result("marc21", "utf-8", NO_BYTES, BIB_SCHEMA, {"items": pl.DataFrame(schema=ITEM_SCHEMA)})
        return result, result.metadata["items"]
    kind = sniff(data)
    if not kind:
        raise LandingFileError(
            f"{path}: is neither MARC21 ISO 2709 (five-digit record length first) nor MARCXML; "
            "export the catalogue as MARC21 (.mrc) or MARCXML.")
    cols = _Columns()
    if kind == "iso2709":
        _read_iso2709(data, cols)
    else:
        _read_marcxml(path, data, cols)
    # Subjects travel as one joined string per record and are split once, vectorised:
    # a list column built row by row from Python lists costs more than the whole extraction.
    bib = dict(cols.bib, subjects=[SUBJECT_SEPARATOR.join(s) for s in cols.bib["subjects"]])
    bibs = pl.DataFrame(bib, schema=dict(BIB_SCHEMA, subjects=pl.Utf8)).with_columns(
        pl.when(pl.col("subjects") == "").then(pl.lit([], BIB_SCHEMA["subjects"]))
        .otherwise(pl.col("subjects").str.split(SUBJECT_SEPARATOR)).alias("subjects"))
    items = pl.DataFrame(cols.items, schema=ITEM_SCHEMA)
    rejects = pl.DataFrame(cols.rejects, schema=REJECT_SCHEMA)
    result = ParseResult(rows=bibs, rejects=rejects, encoding="utf-8", format=f"marc21-{kind}",
                         metadata={"items": items, "records_read": bibs.height + rejects.height})
    if not result.rows_read:
        result.metadata[EMPTY] = "a catalogue export without records"
    return result, items


def parse(path: Path, library: Library) -> ParseResult:
    """Bib rows in ``rows``; the items frame in ``metadata["items"]``."""
    return parse_marc(path, library)[0]
