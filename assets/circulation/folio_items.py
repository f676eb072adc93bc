"""FOLIO item UUIDs resolved to what a librarian reads on the book: barcode, call number, item number.

A bare storage record (``/loan-storage/loans``, ``/request-storage/requests``,
``/check-in-storage/check-ins``) names its item by UUID only. Beside the day files the library
delivers the inventory's items, ``GET /item-storage/items`` (``folio_items.json``), or the same
items one per line (``folio_items.jsonl``, gzip or not: the form for a large collection, read
line by line keeping only the items asked for). Each record says how its item was resolved, so a
loan whose item is missing from the export is loaded and visibly flagged, never dropped or guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from assets.circulation.folio_json import ITEMS, UUID, Answer, beside, read_records
from assets.reading import read_landing_text
from warehouse.library import Library
from warehouse.textio import LandingFileError

ITEMS_FILES = ("folio_items.json", "folio_items.jsonl", "folio_items.json.gz", "folio_items.jsonl.gz")
HRID = re.compile(r"[A-Za-z]*0*(\d{1,18})")

# How a record's item UUID was resolved (column `item_resolution`).
EMBEDDED = "embedded"                        # the record embeds its item (/circulation/loans)
ITEMS_EXPORT = "items_export"                # found in the items export beside the file
NOT_IN_ITEMS_EXPORT = "not_in_items_export"  # an items export is there, without this item
NO_ITEMS_EXPORT = "no_items_export"          # no items export beside the file
RESOLUTIONS = (EMBEDDED, ITEMS_EXPORT, NOT_IN_ITEMS_EXPORT, NO_ITEMS_EXPORT)


@dataclass(frozen=True)
class Item:
    """What Shuku keeps of a FOLIO item, and how it was found."""

    resolution: str
    item_number: int | None = None   # the number of its HRID (it00000123 → 123), else an all-digit barcode
    barcode: str | None = None
    call_number: str | None = None
    item_type: str | None = None     # material type name, where the record embeds it
    location: str | None = None      # location name, where the record embeds it


def item_number(hrid, barcode) -> int | None:
    """The item's number: its HRID's digits, else its barcode when that is all digits."""
    if hrid and (found := HRID.fullmatch(str(hrid).strip())):
        return int(found.group(1))
    barcode = str(barcode or "").strip()
    return int(barcode) if barcode.isdigit() and len(barcode) <= 18 else None


def _call_number(item: dict) -> str | None:
    """The effective call number FOLIO computes (the item's own, else its holdings'), else the item's."""
    for key in ("effectiveCallNumberComponents", "callNumberComponents"):
        components = item.get(key) if isinstance(item.get(key), dict) else {}
        if components.get("callNumber"):
            parts = (components.get("prefix"), components["callNumber"], components.get("suffix"))
            return " ".join(str(p).strip() for p in parts if p)
    return item.get("itemLevelCallNumber") or item.get("callNumber") or None


def _name(value) -> str | None:
    return value.get("name") if isinstance(value, dict) else None


def from_item(item: dict, resolution: str) -> Item:
    return Item(resolution, item_number(item.get("hrid"), item.get("barcode")), item.get("barcode") or None,
                _call_number(item), _name(item.get("materialType")), _name(item.get("location")))


class Export:
    """A FOLIO export beside a day file (``answer``'s records, named by one of ``files``), read once
    per file for the record UUIDs it names; a subclass says which answer and files."""

    answer: Answer = ITEMS
    files: tuple[str, ...] = ITEMS_FILES

    def __init__(self, path: Path | None, wanted: set[str], library: Library | None = None) -> None:
        self.path = path
        self.records: dict[str, dict] = self._read(path, wanted, library) if path else {}

    @classmethod
    def beside(cls, path: Path, wanted: set[str], library: Library | None = None):
        return cls(beside(path, *cls.files), wanted, library)

    @classmethod
    def _read(cls, path: Path, wanted: set[str], library: Library | None) -> dict[str, dict]:
        # Line by line within the line limit (a record over it is not found: what names it is flagged);
        # a document on lines over the limit (written without line breaks) is read again whole.
        landing = read_landing_text(path, cls.answer.source, library)
        if _one_record_per_line(landing.text, cls.answer):
            return _wanted_lines(path, landing.text, wanted, cls.answer)
        if landing.long_lines:
            landing = read_landing_text(path, cls.answer.source, library, whole=True)
        found = read_records(path, landing.text, cls.answer)
        noun = cls.answer.noun[:-1]
        bad = next((n for n, record in found.records if not isinstance(record, dict) or not record.get("id")), None)
        if bad is not None:
            raise LandingFileError(f"{path}: record {bad} is not a {noun} with an `id`; export the {cls.answer.noun} "
                                   f"from FOLIO ({cls.answer.endpoint}) again.")
        return {str(r["id"]): r for _, r in found.records if str(r["id"]) in wanted}


class ItemsExport(Export):
    """The items export beside a day file (``/item-storage/items``)."""

    def resolve(self, record: dict, item_id: str) -> Item:
        """The record's item: from the items export, else as the record embeds it, else flagged unresolved."""
        if item_id in self.records:
            return from_item(self.records[item_id], ITEMS_EXPORT)
        embedded = record.get("item") if isinstance(record.get("item"), dict) else {}
        if embedded.get("hrid") or embedded.get("barcode"):
            return from_item(embedded, EMBEDDED)
        return Item(NOT_IN_ITEMS_EXPORT if self.path else NO_ITEMS_EXPORT)

    def facts(self, resolutions: list[str]) -> dict:
        """Parse metadata: the items export read, and how many records each way of resolving served."""
        return {"items_export": self.path.name if self.path else None,
                "item_resolution": {r: resolutions.count(r) for r in RESOLUTIONS if r in resolutions}}


def wanted_items(records: list[tuple[int, object]]) -> set[str]:
    return {str(r["itemId"]) for _, r in records if isinstance(r, dict) and r.get("itemId")}


def _one_record_per_line(text: str, answer: Answer) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        record = json.loads(first)
    except (json.JSONDecodeError, RecursionError):
        return False
    return isinstance(record, dict) and "id" in record and answer.collection not in record


def _wanted_lines(path: Path, text: str, wanted: set[str], answer: Answer) -> dict[str, dict]:
    """The wanted records of JSON lines, parsing only the lines that name one of them (an export
    of millions of items is read in seconds)."""
    records = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not wanted.intersection(UUID.findall(line)):
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise LandingFileError(f"{path}: line {number} is not a JSON object; export the {answer.noun} from "
                                   f"FOLIO ({answer.endpoint}) again.") from None
        if isinstance(record, dict) and str(record.get("id")) in wanted:
            records[str(record["id"])] = record
    return records
