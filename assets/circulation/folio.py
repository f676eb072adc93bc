"""FOLIO loans: circulation storage loan records, mapped to the same events as the Koha export.

``circulation/folio_loans_YYYY-MM-DD.json`` holds the loans that changed that day, as
``GET /loan-storage/loans`` (or ``/circulation/loans``) returns them —
``{"loans": [...], "totalRecords": n}`` — or one loan as ``GET /loan-storage/loans/{id}``
returns it, or JSON lines of single loans (``.jsonl``).

A FOLIO loan is a state, not a transaction, so each loan becomes up to three events:
``issue`` at ``loanDate``, ``renew`` at ``metadata.updatedDate`` when the last action was a
renewal (earlier renewals carry no time and are only counted), ``return`` at ``returnDate``
(a loan closed by a check-in without one: at ``metadata.updatedDate``). A storage loan names its
item by UUID: the events are keyed by it (``item_id``) and resolved to barcode, call number and
item number through the items export beside the file (assets/circulation/folio_items.py), and
the reader's UUID to their card's barcode through the users export (assets/circulation/folio_users.py).
When the file name carries its day, only the events of that day are kept. FOLIO times are UTC;
events are stored in the library's local time, as Koha writes them. The mapping of every column
is in docs/LANDING.md.
"""

from __future__ import annotations

from pathlib import Path

from assets.circulation import folio_json as fj
from assets.circulation.folio_items import ItemsExport, wanted_items
from assets.circulation.folio_users import Readers, ResolvedReaderCards
from assets.parsing import CARD_NUMBER, ParseResult, Reason, RowRejected
from schemas.model import contract_for
from warehouse.library import Library

TABLE = "circulation_event"
# An anonymised loan (closed, its reader removed as FOLIO's anonymisation does) keeps its events.
REQUIRED = ("id", "itemId", "loanDate", "action")
RENEWAL_ACTIONS = ("renewed", "renewedThroughOverride")
CHECK_IN_ACTIONS = ("checkedin", "checkedInReturnedByPatron", "checkedInFoundByLibrary", "closedLoan")
SERVICE_POINTS_FILE = fj.SERVICE_POINTS_FILE


def looks_like_json(data: bytes) -> bool:
    """Whether decompressed landing bytes are JSON (a FOLIO export) rather than CSV."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return head in (b"{", b"[")


def card_of(loan) -> str | None:
    """The reader's card of a loan: its embedded borrower's barcode, else its ``userId``."""
    return fj.reader_card(loan, "borrower", "userId")


CARDS = ResolvedReaderCards(fj.LOANS, "borrower", "userId")


def _category(loan: dict) -> str | None:
    group = loan.get("patronGroupAtCheckout")
    name = group.get("name") if isinstance(group, dict) else None
    if not name:
        return None
    codes = contract_for(f"staging.{TABLE}").allowed_values("category_code")
    if name.upper() not in codes:
        raise RowRejected(Reason.UNKNOWN_CODE, f"patronGroupAtCheckout.name {name!r} is not one of {', '.join(codes)}")
    return name.upper()


class Loans:
    """The events of one file's loans, and what the file's loans said without an event."""

    def __init__(self, path: Path, found: fj.Records, library: Library) -> None:
        self.library = library
        self.points = fj.service_points(path, library)
        self.items = ItemsExport.beside(path, wanted_items(found.records), library)
        self.readers = Readers(path, found.records, "borrower", "userId", library)
        self.undated_renewals = self.undated_returns = 0
        self.resolutions: list[str] = []

    def facts(self, found: fj.Records, parsed: fj.Parsed) -> dict:
        with_events = {r["source_line"] for r in parsed.rows}
        return {"loans_without_events_on_file_day": len(found.records) - len(parsed.rejects) - len(with_events),
                "renewals_without_time": self.undated_renewals, "closed_without_return_time": self.undated_returns,
                **self.readers.facts()}

    def rows(self, loan: dict) -> list[dict]:
        """The loan's events (without ``source_line``); RowRejected when the loan cannot be used."""
        fj.required(loan, REQUIRED)
        status = loan.get("status") if isinstance(loan.get("status"), dict) else {}
        if not loan.get("userId") and status.get("name") != "Closed":
            raise RowRejected(Reason.MISSING_REQUIRED, "userId empty or absent on a loan that is not closed")
        renewals = loan.get("renewalCount", 0) or 0
        if not isinstance(renewals, int) or renewals < 0:
            raise RowRejected(Reason.BAD_NUMBER, f"renewalCount: {str(renewals)[:20]!r} is not a whole number ≥ 0")
        item_id = fj.uuid(loan, "itemId")
        item = self.items.resolve(loan, item_id)
        lent_at = fj.branch(loan, "checkoutServicePointId", "checkoutServicePoint", self.points, self.library)
        common = {
            "item_number": item.item_number, "item_id": item_id, "item_barcode": item.barcode,
            "call_number": item.call_number, "item_resolution": item.resolution, "item_type": item.item_type,
            "location": item.location or loan.get("itemEffectiveLocationIdAtCheckOut"),
            "collection_code": None, "category_code": _category(loan), CARD_NUMBER: self.readers.card(loan),
        }
        times = [("issue", fj.timestamp("loanDate", loan["loanDate"], self.library), lent_at)]
        undated = renewals
        metadata = loan.get("metadata") if isinstance(loan.get("metadata"), dict) else {}
        updated = metadata.get("updatedDate")
        if loan["action"] in RENEWAL_ACTIONS and renewals and updated:
            times.append(("renew", fj.timestamp("metadata.updatedDate", updated, self.library), lent_at))
            undated -= 1
        returned = ("returnDate", loan.get("returnDate")) if loan.get("returnDate") else (
            ("metadata.updatedDate", updated) if loan["action"] in CHECK_IN_ACTIONS and status.get("name") == "Closed"
            else (None, None))
        if returned[1]:
            back_at = fj.branch(loan, "checkinServicePointId", "checkinServicePoint", self.points, self.library,
                                required=False) or lent_at
            times.append(("return", fj.timestamp(returned[0], returned[1], self.library), back_at))
        elif status.get("name") == "Closed":
            self.undated_returns += 1
        self.undated_renewals += undated
        self.resolutions.append(item.resolution)
        return [{"event_at": at, "event_date": at.date(), "event_type": kind, "branch_code": where, **common}
                for kind, at, where in times]


def parse(path: Path, library: Library) -> ParseResult:
    """Circulation events of one FOLIO loans file, and its rejected loans."""
    return fj.parse_answer(path, library, fj.LOANS, Loans, TABLE, "event_date")
