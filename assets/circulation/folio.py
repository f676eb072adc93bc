"""FOLIO loans: circulation storage loan records, mapped to the same events as the Koha export.

``circulation/folio_loans_YYYY-MM-DD.json`` holds the loans that changed that day, as
``GET /loan-storage/loans`` (or ``/circulation/loans``) returns them —
``{"loans": [...], "totalRecords": n}`` — or as JSON lines of single loans (``.jsonl``).

A FOLIO loan is a state, not a transaction, so each loan becomes up to three events:
``issue`` at ``loanDate``, ``renew`` at ``metadata.updatedDate`` when the last action was a
renewal (earlier renewals carry no time and are only counted), ``return`` at ``returnDate``.
When the file name carries its day, only the events of that day are kept: a loan's earlier
events came in the files of their own days. FOLIO times are UTC; events are stored in the
library's local time, as Koha writes them. The mapping of every column is in docs/LANDING.md.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl

from assets.cards import CardField, IsCard, LineCards
from assets.parsing import CARD_NUMBER, REJECT_SCHEMA, ParseResult, Reason, RowRejected, row_schema
from schemas.model import contract_for
from warehouse.library import Library
from assets.reading import (EMPTY, NO_BYTES, SHOWN, check_json_values, empty_result, load_json,
                            read_landing_text)
from warehouse.textio import LandingFileError, decode, read_bytes

FORMAT_DOCUMENT = "folio-loans-json"
FORMAT_LINES = "folio-loans-jsonl"
TABLE = "circulation_event"
REQUIRED = ("id", "userId", "itemId", "loanDate", "action")
RENEWAL_ACTIONS = ("renewed", "renewedThroughOverride")
# Embedded objects of /circulation/loans that hold names and contacts: never copied to quarantine.
PERSONAL = ("borrower", "proxyUser", "patron", "user")
SERVICE_POINTS_FILE = "folio_service_points.json"
FILE_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")
HRID = re.compile(r"[A-Za-z]*0*(\d{1,18})")


def looks_like_json(data: bytes) -> bool:
    """Whether decompressed landing bytes are JSON (a FOLIO export) rather than CSV."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return head in (b"{", b"[")


def _one_loan_per_line(first: str) -> bool:
    """Whether a file whose first line is ``first`` holds JSON lines of single loans (else one document)."""
    try:
        single = json.loads(first)
    except (json.JSONDecodeError, RecursionError):
        return False
    return isinstance(single, dict) and "loans" not in single


def _records(path: Path, text: str, limit: int | None = None) -> tuple[list[tuple[int, object]], str, dict]:
    """(number, loan) pairs — position in ``loans`` or line number — the format, and file facts.
    ``limit``: the longest line of JSON lines (longer ones are rejected unread)."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise LandingFileError(f"{path}: the file is empty; ask FOLIO for the day's loans again.")
    if _one_loan_per_line(first):
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if limit is not None and len(line.encode("utf-8")) > limit:
                records.append((number, RowRejected(Reason.LINE_TOO_LONG, f"line of {len(line.encode('utf-8')):,} bytes, "
                                                    f"over the limit of {limit:,} (landing_limits.max_line_bytes)")))
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                records.append((number, RowRejected(Reason.MALFORMED_LINE, f"not a JSON object ({exc.msg}, column {exc.colno})")))
            except RecursionError:
                records.append((number, RowRejected(Reason.MALFORMED_LINE, "JSON nested too deeply to be a loan")))
        return records, FORMAT_LINES, {}
    try:
        doc = load_json(text, path)
    except json.JSONDecodeError as exc:
        raise LandingFileError(
            f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}); the download was probably cut off. "
            "Fetch the day's loans from FOLIO (/loan-storage/loans) again.") from None
    loans = doc if isinstance(doc, list) else doc.get("loans") if isinstance(doc, dict) else None
    if not isinstance(loans, list):
        raise LandingFileError(
            f"{path}: JSON without a `loans` list; expected the answer of FOLIO's /loan-storage/loans "
            '(`{"loans": [...], "totalRecords": n}`) or one loan per line.')
    total = doc.get("totalRecords") if isinstance(doc, dict) else None
    if isinstance(total, int) and total > len(loans):
        raise LandingFileError(
            f"{path}: holds {len(loans)} of the {total} loans FOLIO reported (totalRecords): one page of "
            "a paged answer. Export again with `limit` at least totalRecords, or page through and deliver "
            "every loan in one file.")
    return list(enumerate(loans, 1)), FORMAT_DOCUMENT, {"total_records": total}


def _service_points(path: Path) -> dict[str, str]:
    """Service point id → code, from FOLIO's /service-points answer delivered beside the loans."""
    for folder in (path.parent, path.parent.parent):
        candidate = folder / SERVICE_POINTS_FILE
        if candidate.is_file():
            text, _ = decode(read_bytes(candidate), candidate)
            try:
                points = json.loads(text).get("servicepoints", [])
            except (json.JSONDecodeError, AttributeError):
                raise LandingFileError(
                    f"{candidate}: not FOLIO's /service-points answer (`{{\"servicepoints\": [...]}}`); "
                    "fetch it again.") from None
            return {p["id"]: p.get("code") for p in points if isinstance(p, dict) and "id" in p}
    return {}


def _timestamp(field: str, value, library: Library) -> dt.datetime:
    """A FOLIO ISO 8601 time (UTC when it has no offset) as library local wall-clock time."""
    try:
        at = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise RowRejected(Reason.BAD_TIMESTAMP, f"{field}: {str(value)[:40]!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(library.tz).replace(tzinfo=None)


def _item_number(loan: dict) -> int:
    """The item's HRID number (``it00000123`` → 123), else its barcode when it is all digits."""
    item = loan.get("item") if isinstance(loan.get("item"), dict) else {}
    hrid = item.get("hrid") or loan.get("itemHrid")
    if hrid and (m := HRID.fullmatch(str(hrid).strip())):
        return int(m.group(1))
    barcode = str(item.get("barcode") or "").strip()
    if barcode.isdigit() and len(barcode) <= 18:
        return int(barcode)
    raise RowRejected(Reason.BAD_NUMBER,
                  f"itemId {loan.get('itemId')}: no numeric item HRID or barcode to use as item number; "
                  "export through /circulation/loans, which embeds the item")


def _branch(loan: dict, points: dict[str, str], library: Library) -> str:
    embedded = loan.get("checkoutServicePoint") if isinstance(loan.get("checkoutServicePoint"), dict) else {}
    point = loan.get("checkoutServicePointId")
    code = embedded.get("code") or points.get(point)
    if not code:
        raise RowRejected(Reason.UNKNOWN_CODE,
                      f"checkoutServicePointId {point}: no service point code; deliver {SERVICE_POINTS_FILE} "
                      "(FOLIO /service-points) beside the loans")
    if code not in {b.code for b in library.branches}:
        raise RowRejected(Reason.UNKNOWN_CODE, f"service point code {code!r} is not a branch of the library config")
    return code


def _category(loan: dict) -> str | None:
    group = loan.get("patronGroupAtCheckout")
    name = group.get("name") if isinstance(group, dict) else None
    if not name:
        return None
    codes = contract_for(f"staging.{TABLE}").allowed_values("category_code")
    if name.upper() not in codes:
        raise RowRejected(Reason.UNKNOWN_CODE, f"patronGroupAtCheckout.name {name!r} is not one of {', '.join(codes)}")
    return name.upper()


def card_of(loan) -> str | None:
    """The reader's card of a loan: its embedded borrower's barcode, else its ``userId``."""
    if not isinstance(loan, dict):
        return None
    borrower = loan.get("borrower") if isinstance(loan.get("borrower"), dict) else {}
    card = borrower.get("barcode") or loan.get("userId")
    return None if card in (None, "") else str(card)


class LoanBorrower(CardField):
    """Where a FOLIO loan names its reader (``card_of``): the loans of a document are dropped from it
    and the document written again; JSON lines are dropped line by line."""

    def without_reader(self, path: Path, data: bytes, is_card: IsCard, library: Library) -> tuple[bytes, int]:
        text, encoding = decode(data, path)
        lines = [line.decode(encoding, errors="replace") for line in data.splitlines(keepends=True)]
        if _one_loan_per_line(next((line for line in lines if line.strip()), "")):
            return super().without_reader(path, data, is_card, library)
        doc = json.loads(text)
        loans = doc if isinstance(doc, list) else doc.get("loans", [])
        kept = [loan for loan in loans if not is_card(card_of(loan))]
        if len(kept) == len(loans):
            return data, 0
        if isinstance(doc, list):
            doc = kept
        else:
            doc["loans"] = kept
            if "totalRecords" in doc:
                doc["totalRecords"] = len(kept)
        return json.dumps(doc, ensure_ascii=False, indent=2).encode(encoding), len(loans) - len(kept)

    def cards(self, path: Path, lines: list[str], library: Library) -> LineCards:
        cards: LineCards = []
        for line in lines:
            try:
                cards.append(card_of(json.loads(line)))
            except json.JSONDecodeError:
                cards.append(library.card_regex().findall(line))
        return cards


CARDS = LoanBorrower()


def _events(loan, points: dict[str, str], library: Library) -> tuple[list[dict], int]:
    """The loan's events (without ``source_line``) and the number of renewals that carry no time."""
    if not isinstance(loan, dict):
        raise RowRejected(Reason.MALFORMED_LINE, "not a JSON object")
    missing = [f for f in REQUIRED if loan.get(f) in (None, "")]
    if missing:
        raise RowRejected(Reason.MISSING_REQUIRED, f"{', '.join(missing)} empty or absent")
    renewals = loan.get("renewalCount", 0) or 0
    if not isinstance(renewals, int) or renewals < 0:
        raise RowRejected(Reason.BAD_NUMBER, f"renewalCount: {str(renewals)[:20]!r} is not a whole number ≥ 0")
    item = loan.get("item") if isinstance(loan.get("item"), dict) else {}
    material = item.get("materialType") if isinstance(item.get("materialType"), dict) else {}
    location = item.get("location") if isinstance(item.get("location"), dict) else {}
    common = {
        "branch_code": _branch(loan, points, library),
        "item_number": _item_number(loan),
        "item_type": material.get("name"),
        "location": location.get("name") or loan.get("itemEffectiveLocationIdAtCheckOut"),
        "collection_code": None,
        "category_code": _category(loan),
        CARD_NUMBER: card_of(loan),
    }
    times = [("issue", _timestamp("loanDate", loan["loanDate"], library))]
    undated = renewals
    updated = (loan.get("metadata") or {}).get("updatedDate") if isinstance(loan.get("metadata"), dict) else None
    if loan["action"] in RENEWAL_ACTIONS and renewals and updated:
        times.append(("renew", _timestamp("metadata.updatedDate", updated, library)))
        undated -= 1
    if loan.get("returnDate"):
        times.append(("return", _timestamp("returnDate", loan["returnDate"], library)))
    return [{"event_at": at, "event_date": at.date(), "event_type": kind, **common} for kind, at in times], undated


def _raw(loan) -> str:
    shown = {k: v for k, v in loan.items() if k not in PERSONAL} if isinstance(loan, dict) else loan
    return json.dumps(shown, ensure_ascii=False, default=str)[:4096]


def parse(path: Path, library: Library) -> ParseResult:
    """Circulation events of one FOLIO loans file, and its rejected loans."""
    path = Path(path)
    landing = read_landing_text(path, "circulation", library, whole=True)
    text, encoding = landing.text, landing.encoding
    if landing.blank:
        return empty_result(FORMAT_DOCUMENT, encoding, NO_BYTES, row_schema(TABLE))
    records, fmt, facts = _records(path, text, landing.limit)
    if fmt == FORMAT_DOCUMENT:
        check_json_values(landing, "FOLIO loans answer")
    lines = text.splitlines() if fmt == FORMAT_LINES else []
    points = _service_points(path)
    day = FILE_DAY.search(path.name)
    day = dt.date.fromisoformat(day.group(1)) if day else None
    rows, rejects = [], []
    other_days = undated_renewals = loans_without_events = 0
    for number, loan in records:
        try:
            if isinstance(loan, RowRejected):
                raise loan
            events, undated = _events(loan, points, library)
        except RowRejected as exc:
            raw = _raw(loan) if not isinstance(loan, RowRejected) else lines[number - 1][
                :SHOWN if exc.reason == Reason.LINE_TOO_LONG else 4096]
            rejects.append({"source_line": number, "raw_text": raw, "reason": exc.reason.value,
                            "detail": f"loan {number}: {exc.detail}"})
            continue
        undated_renewals += undated
        kept = [e for e in events if day is None or e["event_date"] == day]
        other_days += len(events) - len(kept)
        loans_without_events += not kept
        rows += [{**e, "source_line": number} for e in kept]
    metadata = {**facts, "loans": len(records), "events_on_other_days": other_days,
                "loans_without_events_on_file_day": loans_without_events,
                "renewals_without_time": undated_renewals, "file_day": day.isoformat() if day else None}
    if not records:
        metadata[EMPTY] = "an answer without loans"
    return ParseResult(pl.DataFrame(rows, schema=row_schema(TABLE)), pl.DataFrame(rejects, schema=REJECT_SCHEMA),
                       encoding, fmt, metadata)
