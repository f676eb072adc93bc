"""FOLIO check-ins: circulation storage check-in records, as returns and in-house use.

``circulation/folio_check_ins_YYYY-MM-DD.json`` holds the day's check-ins as
``GET /check-in-storage/check-ins`` returns them — ``{"checkIns": [...], "totalRecords": n}`` —
or one check-in record, or JSON lines. Every scan at a check-in desk is a record; what it was
follows from the item's status before it (``itemStatusPriorToCheckIn``), as FOLIO itself reads it:
an item on loan (or lost, or claimed returned) came back — a ``return``; an available item with
no request waiting was used in the library — ``localuse``, FOLIO's in-house use; any other scan
(an item in transit, awaiting pickup, missing…) is no circulation event, and is counted in the
parse metadata by status. A check-in names no reader (``performedByUserId`` is the staff member,
never kept); fact_loan pairs the return with its loan by the item UUID.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from assets.circulation import folio_json as fj
from assets.circulation.folio_items import ItemsExport, wanted_items
from assets.parsing import CARD_NUMBER, ParseResult, Reason, RowRejected
from warehouse.library import Library

TABLE = "circulation_event"
REQUIRED = ("id", "occurredDateTime", "itemId", "itemStatusPriorToCheckIn")
# Statuses of an item on loan: checking it in ends the loan.
ON_LOAN = ("Checked out", "Declared lost", "Aged to lost", "Claimed returned", "Lost and paid")
AVAILABLE = "Available"
CARDS = None   # a check-in names no reader


class CheckIns:
    """The events of one file's check-ins, and the scans that were none."""

    def __init__(self, path: Path, found: fj.Records, library: Library) -> None:
        self.library = library
        self.points = fj.service_points(path, library)
        self.items = ItemsExport.beside(path, wanted_items(found.records), library)
        self.not_circulation: Counter[str] = Counter()
        self.resolutions: list[str] = []

    def event_type(self, check_in: dict) -> str | None:
        prior = str(check_in["itemStatusPriorToCheckIn"])
        if prior in ON_LOAN:
            return "return"
        if prior == AVAILABLE and not check_in.get("requestQueueSize"):
            return "localuse"
        return None

    def facts(self, found: fj.Records, parsed: fj.Parsed) -> dict:
        return {"check_ins_not_circulation": dict(self.not_circulation)}

    def rows(self, check_in: dict) -> list[dict]:
        fj.required(check_in, REQUIRED)
        queue = check_in.get("requestQueueSize")
        if queue is not None and (not isinstance(queue, int) or queue < 0):
            raise RowRejected(Reason.BAD_NUMBER, f"requestQueueSize: {str(queue)[:20]!r} is not a whole number ≥ 0")
        at = fj.timestamp("occurredDateTime", check_in["occurredDateTime"], self.library)
        item_id = fj.uuid(check_in, "itemId")
        where = fj.branch(check_in, "servicePointId", "servicePoint", self.points, self.library)
        kind = self.event_type(check_in)
        if kind is None:
            self.not_circulation[str(check_in["itemStatusPriorToCheckIn"])] += 1
            return []
        item = self.items.resolve(check_in, item_id)
        self.resolutions.append(item.resolution)
        return [{"event_at": at, "event_date": at.date(), "event_type": kind, "branch_code": where,
                 "item_number": item.item_number, "item_id": item_id, "item_barcode": item.barcode,
                 "call_number": item.call_number, "item_resolution": item.resolution, "item_type": item.item_type,
                 "location": item.location or check_in.get("itemLocationId"), "collection_code": None,
                 "category_code": None, CARD_NUMBER: None}]


def parse(path: Path, library: Library) -> ParseResult:
    """Returns and in-house use of one FOLIO check-ins file, and its rejected records."""
    return fj.parse_answer(path, library, fj.CHECK_INS, CheckIns, TABLE, "event_date")
