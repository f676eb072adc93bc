"""FOLIO requests: circulation storage request records, as the holds readers placed.

``circulation/folio_requests_YYYY-MM-DD.json`` holds the requests that changed that day, as
``GET /request-storage/requests`` returns them — ``{"requests": [...], "totalRecords": n}`` —
or one request record, or JSON lines. A request is one hold, whatever became of it; it is
loaded on the day it was placed (``requestDate``), so only the requests placed on the file's day
are kept (a request filled today was placed, and loaded, earlier). Its reader
(``requester.barcode``, else ``requesterId`` resolved to a barcode by the users export beside the
file, assets/circulation/folio_users.py) is pseudonymised like a card number; the
requester's names never leave landing. An item-level request's item UUID is resolved like a
loan's (assets/circulation/folio_items.py); the instance stays a UUID (``instance_id``): FOLIO
requests do not carry the record's MARC control number, so ``bib_id`` is null.
"""

from __future__ import annotations

from pathlib import Path

from assets.circulation import folio_json as fj
from assets.circulation.folio_items import ItemsExport, wanted_items
from assets.circulation.folio_users import Readers, ResolvedReaderCards
from assets.parsing import CARD_NUMBER, ParseResult, Reason, RowRejected
from schemas.model import contract_for
from warehouse.library import Library

TABLE = "hold"
REQUIRED = ("id", "requestDate", "requestType")
DELIVERY = "Delivery"


def card_of(request) -> str | None:
    """The reader of a request: the embedded requester's barcode, else ``requesterId``."""
    return fj.reader_card(request, "requester", "requesterId")


CARDS = ResolvedReaderCards(fj.REQUESTS, "requester", "requesterId")


class Requests:
    """The holds of one file's requests."""

    def __init__(self, path: Path, found: fj.Records, library: Library) -> None:
        self.library = library
        self.points = fj.service_points(path, library)
        self.items = ItemsExport.beside(path, wanted_items(found.records), library)
        self.readers = Readers(path, found.records, "requester", "requesterId", library)
        self.types = contract_for(f"staging.{TABLE}").allowed_values("request_type")
        self.resolutions: list[str] = []
        self.without_pickup = 0

    def facts(self, found: fj.Records, parsed: fj.Parsed) -> dict:
        return {"holds_without_pickup_branch": self.without_pickup, **self.readers.facts()}

    def rows(self, request: dict) -> list[dict]:
        fj.required(request, REQUIRED)
        # A closed request may have been anonymised (its requester removed); an open one is someone's.
        if not card_of(request) and not str(request.get("status", "")).startswith("Closed"):
            raise RowRejected(Reason.MISSING_REQUIRED, "requesterId empty or absent on a request that is not closed")
        if request["requestType"] not in self.types:
            raise RowRejected(Reason.UNKNOWN_CODE,
                              f"requestType {str(request['requestType'])[:20]!r} is not one of {', '.join(self.types)}")
        reserve_id = fj.uuid(request, "id")
        placed_at = fj.timestamp("requestDate", request["requestDate"], self.library)
        item_id = fj.uuid(request, "itemId")
        instance_id = fj.uuid(request, "instanceId")
        pickup = None
        if request.get("fulfillmentPreference") != DELIVERY:
            pickup = fj.branch(request, "pickupServicePointId", "pickupServicePoint", self.points, self.library,
                               required=False)
            self.without_pickup += pickup is None
        item = self.items.resolve(request, item_id) if item_id else None
        if item:
            self.resolutions.append(item.resolution)
        # FOLIO indexes a request by its item's call number: the one to read where the item's is unknown.
        index = request.get("searchIndex") if isinstance(request.get("searchIndex"), dict) else {}
        components = index.get("callNumberComponents") if isinstance(index.get("callNumberComponents"), dict) else {}
        return [{"placed_at": placed_at, "event_date": placed_at.date(), "reserve_id": reserve_id,
                 "pickup_branch_code": pickup, "bib_id": None, "item_number": item and item.item_number,
                 "item_id": item_id, "item_barcode": item and item.barcode,
                 "call_number": (item and item.call_number) or components.get("callNumber"),
                 "item_resolution": item and item.resolution, "instance_id": instance_id,
                 "request_type": request["requestType"], CARD_NUMBER: self.readers.card(request)}]


def parse(path: Path, library: Library) -> ParseResult:
    """Holds of one FOLIO requests file, and its rejected requests."""
    return fj.parse_answer(path, library, fj.REQUESTS, Requests, TABLE, "event_date")
