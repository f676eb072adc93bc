"""What every FOLIO export Shuku reads has in common: the JSON of a storage API answer, its files
beside it, its UTC times, its service points and the readers it names.

A FOLIO storage API answers a query with a collection, ``{"loans": [...], "totalRecords": n}``,
and a single record by id with the record itself; an export script may also write one record
per line (JSON lines). All three are read, told apart by their bytes, in any encoding the
reading layer knows (assets/reading.py): a JSON line over the source's line limit is quarantined
as ``line_too_long``, a document with a value over it or nested without end is refused, and a
file without records is ``empty``. Anything else is refused whole, naming the file and what it
holds, rather than loaded as nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl

from assets.cards import CardField, IsCard, LineCards
from assets.parsing import REJECT_SCHEMA, ParseResult, Reason, RowRejected, row_schema
from assets.reading import (EMPTY, NO_BYTES, SHOWN, LandingText, check_json_values, empty_result, load_json,
                            read_landing_text)
from warehouse.library import Library
from warehouse.textio import BOMS, LandingFileError, decode

SERVICE_POINTS_FILE = "folio_service_points.json"
FILE_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Embedded objects that hold readers' names and contacts, and the UUIDs of persons: never copied
# to quarantine (the reader's UUID is pseudonymised like a card number; the raw text keeps neither).
PERSONAL = ("borrower", "proxyUser", "patron", "user", "requester", "proxy")
PERSON_IDS = ("userId", "proxyUserId", "requesterId", "performedByUserId")
WITHHELD = "(withheld)"


@dataclass(frozen=True)
class Answer:
    """One FOLIO storage API: where its collection answer holds the records, and what one record has."""

    collection: str              # the list of a collection answer: "loans", "requests", "checkIns", "items"
    endpoint: str                # "/loan-storage/loans", for messages
    marks: tuple[str, ...]       # fields a single record of this kind always has
    landing_name: str            # how the library names such a file under landing/<source>
    source: str = "circulation"  # the landing source whose line limit its files have

    @property
    def noun(self) -> str:
        return self.endpoint.rsplit("/", 1)[-1]


LOANS = Answer("loans", "/loan-storage/loans", ("itemId", "loanDate"), "folio_loans_YYYY-MM-DD.json")
REQUESTS = Answer("requests", "/request-storage/requests", ("requestDate", "requestType"),
                  "folio_requests_YYYY-MM-DD.json", "holds")
CHECK_INS = Answer("checkIns", "/check-in-storage/check-ins", ("occurredDateTime", "itemId"),
                   "folio_check_ins_YYYY-MM-DD.json")
ITEMS = Answer("items", "/item-storage/items", ("holdingsRecordId",), "folio_items.json")
USERS = Answer("users", "/users", ("id", "username"), "folio_users.json")
ANSWERS = (LOANS, REQUESTS, CHECK_INS, ITEMS, USERS)


@dataclass
class Records:
    """The records of one file: (number, record or why its line is unreadable) — the record's
    position in the collection, or its line in JSON lines — its shape, and file facts."""

    records: list[tuple[int, object]]
    shape: str                   # "collection", "single" or "lines"
    total_records: int | None = None


def _what_it_is(doc) -> str:
    """A short description of a JSON document's top level, naming another FOLIO answer it may be."""
    if not isinstance(doc, dict):
        return f"a JSON {type(doc).__name__}"
    other = next((a for a in ANSWERS if isinstance(doc.get(a.collection), list)), None)
    keys = ", ".join(list(doc)[:6]) or "none"
    found = f"a JSON object with the keys {keys}"
    return f"{found} (FOLIO's {other.endpoint} answer: name it {other.landing_name})" if other else found


def read_records(path: Path, text: str, answer: Answer, limit: int | None = None) -> Records:
    """The records of a FOLIO answer file: a collection, a single record or JSON lines (a line over
    ``limit`` bytes rejected unread)."""
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise LandingFileError(f"{path}: the file is empty; export the {answer.noun} from FOLIO "
                               f"({answer.endpoint}) again.")
    expected = (f"expected FOLIO's {answer.endpoint} answer (`{{\"{answer.collection}\": [...], "
                f"\"totalRecords\": n}}`), one {answer.noun[:-1]} record, or one record per line (JSON lines)")
    try:
        doc = load_json(text, path)
    except json.JSONDecodeError as exc:
        first = next(line for line in lines if line.strip())
        try:
            single_line = isinstance(json.loads(first), dict)
        except (json.JSONDecodeError, RecursionError):
            single_line = False
        if not single_line:
            raise LandingFileError(
                f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}); the download was probably cut off. "
                f"Export the {answer.noun} from FOLIO ({answer.endpoint}) again.") from None
        return Records(_lines(lines, limit), "lines")
    if isinstance(doc, list):
        return Records(list(enumerate(doc, 1)), "collection")
    if isinstance(doc, dict) and isinstance(doc.get(answer.collection), list):
        records = doc[answer.collection]
        total = doc.get("totalRecords")
        if isinstance(total, int) and total > len(records):
            raise LandingFileError(
                f"{path}: holds {len(records)} of the {total} {answer.noun} FOLIO reported (totalRecords): one "
                "page of a paged answer. Export again with `limit` at least totalRecords, or page through and "
                f"deliver every record in one file.")
        return Records(list(enumerate(records, 1)), "collection", total if isinstance(total, int) else None)
    if isinstance(doc, dict) and all(mark in doc for mark in answer.marks):
        return Records([(1, doc)], "single")
    raise LandingFileError(f"{path}: {_what_it_is(doc)}, not FOLIO {answer.noun}: {expected}.")


def _lines(lines: list[str], limit: int | None) -> list[tuple[int, object]]:
    records: list[tuple[int, object]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if limit is not None and len(line) * 4 > limit and (size := len(line.encode("utf-8"))) > limit:
            records.append((number, RowRejected(Reason.LINE_TOO_LONG, f"line of {size:,} bytes, over the limit of "
                                                f"{limit:,} (landing_limits.max_line_bytes in the library config)")))
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            records.append((number, RowRejected(Reason.MALFORMED_LINE,
                                                f"not a JSON object ({exc.msg}, column {exc.colno})")))
        except RecursionError:
            records.append((number, RowRejected(Reason.MALFORMED_LINE, "JSON nested too deeply to be a record")))
    return records


def read_text(path: Path, answer: Answer, library: Library | None) -> LandingText:
    """A FOLIO file as text (gzip or not; UTF-8, GB18030 or UTF-16), whole up to ``max_json_bytes``."""
    return read_landing_text(path, answer.source, library, whole=True)


def read_answer(path: Path, answer: Answer, library: Library | None) -> tuple[Records | None, LandingText]:
    """(records, text) of a FOLIO answer file; no records (None) when the file is blank."""
    landing = read_text(path, answer, library)
    if landing.blank:
        return None, landing
    found = read_records(path, landing.text, answer, landing.limit)
    if found.shape != "lines":
        check_json_values(landing, f"FOLIO {answer.noun} answer")
    return found, landing


def beside(path: Path, *names: str) -> Path | None:
    """The first of ``names`` in the file's folder, else in the folder above it (one FOLIO folder
    may hold the day files in sub-folders)."""
    for folder in (path.parent, path.parent.parent):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def file_day(path: Path) -> dt.date | None:
    """The day in a file's name, whose events alone it loads (None: every event of every record)."""
    found = FILE_DAY.search(path.name)
    return dt.date.fromisoformat(found.group(1)) if found else None


def timestamp(field: str, value, library: Library) -> dt.datetime:
    """A FOLIO ISO 8601 time (UTC when it has no offset) as library local wall-clock time."""
    try:
        at = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RowRejected(Reason.BAD_TIMESTAMP, f"{field}: {str(value)[:40]!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(library.tz).replace(tzinfo=None)


def service_points(path: Path, library: Library | None = None) -> dict[str, str]:
    """Service point id → code, from FOLIO's /service-points answer delivered beside the records."""
    found = beside(path, SERVICE_POINTS_FILE)
    if found is None:
        return {}
    text = read_landing_text(found, "circulation", library, whole=True).text
    try:
        points = load_json(text, found).get("servicepoints", [])
    except (json.JSONDecodeError, AttributeError):
        raise LandingFileError(f"{found}: not FOLIO's /service-points answer (`{{\"servicepoints\": [...]}}`); "
                               "fetch it again.") from None
    return {p["id"]: p.get("code") for p in points if isinstance(p, dict) and "id" in p}


def branch(record: dict, id_field: str, embedded_field: str, points: dict[str, str], library: Library,
           required: bool = True) -> str | None:
    """The branch of a record's service point: its code (embedded, or from the service points file),
    mapped by the library config's `folio.service_points` when FOLIO's codes are not branch codes.
    A record naming no service point belongs to `folio.default_branch`."""
    embedded = record.get(embedded_field) if isinstance(record.get(embedded_field), dict) else {}
    point = record.get(id_field)
    if not point and not embedded:
        if library.folio_default_branch or not required:
            return library.folio_default_branch
        raise RowRejected(Reason.MISSING_REQUIRED, f"{id_field} absent and no `folio.default_branch` in the library "
                                                   "config to book it to")
    code = embedded.get("code") or points.get(point)
    mapped = library.folio_service_points.get(code or "") or library.folio_service_points.get(str(point))
    if mapped:
        return mapped
    if not code:
        raise RowRejected(Reason.UNKNOWN_CODE,
                          f"{id_field} {point}: no service point code; deliver {SERVICE_POINTS_FILE} "
                          "(FOLIO /service-points) beside the file, or map it in `folio.service_points`")
    if code not in {b.code for b in library.branches}:
        raise RowRejected(Reason.UNKNOWN_CODE, f"service point code {code!r} is not a branch of the library config; "
                                               "map it to one in `folio.service_points`")
    return code


def reader_card(record, embedded_field: str, id_field: str) -> str | None:
    """The reader's card: the embedded reader's barcode, else their FOLIO user UUID; both are
    pseudonymised alike, so neither is stored in the clear."""
    if not isinstance(record, dict):
        return None
    embedded = record.get(embedded_field) if isinstance(record.get(embedded_field), dict) else {}
    card = embedded.get("barcode") or record.get(id_field)
    return None if card in (None, "") else str(card)


def raw_text(record) -> str:
    """A rejected record for quarantine, without readers' names, contacts or UUIDs."""
    if isinstance(record, dict):
        record = {k: WITHHELD if k in PERSON_IDS and v else v for k, v in record.items() if k not in PERSONAL}
    return json.dumps(record, ensure_ascii=False, default=str)[:4096]


class ReaderCards(CardField):
    """Where the records of a FOLIO answer name their reader (``card_of``): the reader's records of a
    document are dropped from it and the document written again; JSON lines go line by line."""

    def __init__(self, answer: Answer, card_of: Callable[[object], str | None]) -> None:
        self.answer, self.card_of = answer, card_of

    def without_reader(self, path: Path, data: bytes, is_card: IsCard, library: Library) -> tuple[bytes, int]:
        text, encoding = decode(data, path)
        found = read_records(path, text, self.answer)
        if found.shape == "lines":
            return super().without_reader(path, data, is_card, library)
        if found.shape == "single":
            return (b"", 1) if self._theirs(path, [found.records[0][1]], is_card, library)[0] else (data, 0)
        doc = json.loads(text)
        records = doc if isinstance(doc, list) else doc[self.answer.collection]
        kept = [r for r, gone in zip(records, self._theirs(path, records, is_card, library)) if not gone]
        if len(kept) == len(records):
            return data, 0
        if isinstance(doc, list):
            doc = kept
        else:
            doc[self.answer.collection] = kept
            if "totalRecords" in doc:
                doc["totalRecords"] = len(kept)
        bom = next((mark for mark, named in BOMS if named == encoding and named != "utf-8"), b"")
        return bom + json.dumps(doc, ensure_ascii=False, indent=2).encode(encoding), len(records) - len(kept)

    def cards_of(self, path: Path, records: list, library: Library) -> list[list[str | None]]:
        """Every card each record may be stored under (a subclass adds the barcode of a user UUID)."""
        return [[self.card_of(r)] for r in records]

    def _theirs(self, path: Path, records: list, is_card: IsCard, library: Library) -> list[bool]:
        return [any(is_card(c) for c in cards) for cards in self.cards_of(path, records, library)]

    def cards(self, path: Path, lines: list[str], library: Library) -> LineCards:
        records: list = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                records.append(None)
        known = self.cards_of(path, records, library)
        return [[c for c in cards if c] if record is not None else library.card_regex().findall(line)
                for line, record, cards in zip(lines, records, known)]


@dataclass
class Parsed:
    """The rows of a file's records, its rejected records, and how many events fell on other days."""

    rows: list[dict]
    rejects: list[dict]
    other_days: int = 0


def parse_records(found: Records, text: str, rows_of: Callable[[dict], list[dict]], day_column: str,
                  day: dt.date | None) -> Parsed:
    """Each record's rows (``rows_of`` raises RowRejected for a record that cannot be used), the
    rows of ``day`` only when the file's name has one: earlier events came in their own days' files."""
    lines = text.splitlines()
    parsed = Parsed([], [])
    for number, record in found.records:
        try:
            if isinstance(record, RowRejected):
                raise record
            if not isinstance(record, dict):
                raise RowRejected(Reason.MALFORMED_LINE, "not a JSON object")
            rows = rows_of(record)
        except RowRejected as exc:
            shown = SHOWN if exc.reason == Reason.LINE_TOO_LONG else 4096
            raw = lines[number - 1][:shown] if isinstance(record, RowRejected) else raw_text(record)
            parsed.rejects.append({"source_line": number, "raw_text": raw, "reason": exc.reason.value,
                                   "detail": f"record {number}: {exc.detail}"})
            continue
        kept = [r for r in rows if day is None or r[day_column] == day]
        parsed.other_days += len(rows) - len(kept)
        parsed.rows += [{**r, "source_line": number} for r in kept]
    return parsed


def required(record: dict, fields: tuple[str, ...]) -> None:
    missing = [f for f in fields if record.get(f) in (None, "")]
    if missing:
        raise RowRejected(Reason.MISSING_REQUIRED, f"{', '.join(missing)} empty or absent")


def uuid(record: dict, field: str) -> str | None:
    """A record's UUID field as text (None when absent); a value that is no UUID rejects the record."""
    value = record.get(field)
    if value in (None, ""):
        return None
    if not UUID.fullmatch(str(value)):
        raise RowRejected(Reason.UNKNOWN_CODE, f"{field}: {str(value)[:40]!r} is not a UUID")
    return str(value)


def parse_answer(path: Path, library: Library, answer: Answer, reader, table: str, day_column: str) -> ParseResult:
    """The rows of one FOLIO answer file for ``staging.<table>``, its rejected records and facts.

    ``reader(path, records, library)`` turns a record into rows (``rows``) and states what the
    file's records said without a row (``facts``); its ``items`` and ``resolutions`` say how
    the records' items were resolved."""
    path = Path(path)
    found, landing = read_answer(path, answer, library)
    fmt = f"folio-{answer.noun}-json"
    if found is None:
        return empty_result(fmt, landing.encoding, NO_BYTES, row_schema(table))
    records = reader(path, found, library)
    day = file_day(path)
    parsed = parse_records(found, landing.text, records.rows, day_column, day)
    metadata = {"total_records": found.total_records, "shape": found.shape,
                answer.noun.replace("-", "_"): len(found.records), "events_on_other_days": parsed.other_days,
                **records.facts(found, parsed), "file_day": day.isoformat() if day else None,
                **records.items.facts(records.resolutions)}
    if not found.records:
        metadata[EMPTY] = f"an answer without {answer.noun}"
    return ParseResult(pl.DataFrame(parsed.rows, schema=row_schema(table)),
                       pl.DataFrame(parsed.rejects, schema=REJECT_SCHEMA), landing.encoding,
                       f"{fmt}{'l' if found.shape == 'lines' else ''}", metadata)
