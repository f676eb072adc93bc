"""FOLIO user UUIDs resolved to the reader's card: the barcode the library's other systems know.

A storage loan or request names its reader by UUID (``userId``, ``requesterId``); Koha, the
proxy and the gate name the same reader by the barcode on their card. Beside the day files the
library may deliver its users, ``GET /users`` (``folio_users.json``), or one user per line
(``folio_users.jsonl``, gzip or not). Only the ``id`` and ``barcode`` of the users the file names
are kept; names, addresses and the rest never leave landing. The barcode is then pseudonymised as
any card is, so a reader's FOLIO loans and their other use meet under one pseudonym. Without the
export, or for a user not in it or without a barcode, the loan keeps the UUID (pseudonymised
alike) and the parse says how many readers stayed unresolved: never dropped, never guessed.
Erasure drops the reader from the export too (`UserCards`), after the loans that needed it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from assets.circulation import folio_json as fj
from assets.circulation.folio_items import Export
from warehouse.library import Library

USERS_FILES = ("folio_users.json", "folio_users.jsonl", "folio_users.json.gz", "folio_users.jsonl.gz")

# How a record's reader was named (parse metadata `reader_resolution`).
EMBEDDED = "embedded"                        # the record embeds its reader's barcode (/circulation/loans)
USERS_EXPORT = "users_export"                # the UUID found in the users export, with a barcode
NO_BARCODE = "user_without_barcode"          # found in the users export, without a barcode
NOT_IN_USERS_EXPORT = "not_in_users_export"  # a users export is there, without this user
NO_USERS_EXPORT = "no_users_export"          # no users export beside the file
NO_READER = "no_reader"                      # an anonymised record (closed, its reader removed)
UNRESOLVED = (NO_BARCODE, NOT_IN_USERS_EXPORT, NO_USERS_EXPORT)
RESOLUTIONS = (EMBEDDED, USERS_EXPORT, *UNRESOLVED, NO_READER)


class UsersExport(Export):
    """The users export beside a day file, read for the user UUIDs its records name."""

    answer = fj.USERS
    files = USERS_FILES

    def __init__(self, path: Path | None, wanted: set[str], library: Library | None = None) -> None:
        super().__init__(path, wanted, library)
        # the barcode alone: nothing else of a user is kept past reading
        self.records = {uid: {"barcode": str(u.get("barcode") or "").strip()} for uid, u in self.records.items()}

    def barcode(self, user_id: str | None) -> str | None:
        found = self.records.get(str(user_id)) if user_id else None
        return (found or {}).get("barcode") or None

    def card(self, record: dict, embedded_field: str, id_field: str) -> tuple[str | None, str]:
        """(the reader's card, how it was found): the embedded barcode, else the export's barcode for
        the UUID, else the UUID itself (pseudonymised alike) with why it stayed unresolved."""
        embedded = record.get(embedded_field) if isinstance(record.get(embedded_field), dict) else {}
        if embedded.get("barcode"):
            return str(embedded["barcode"]), EMBEDDED
        user_id = record.get(id_field)
        if user_id in (None, ""):
            return None, NO_READER
        if self.barcode(user_id):
            return self.barcode(user_id), USERS_EXPORT
        how = NO_USERS_EXPORT if self.path is None else NO_BARCODE if str(user_id) in self.records else NOT_IN_USERS_EXPORT
        return str(user_id), how


class Readers:
    """How the readers of one file's records were named, for its parse metadata."""

    def __init__(self, path: Path, records: list[tuple[int, object]], embedded_field: str, id_field: str,
                 library: Library | None) -> None:
        self.embedded_field, self.id_field = embedded_field, id_field
        wanted = {str(r[id_field]) for _, r in records if isinstance(r, dict) and r.get(id_field)}
        self.users = UsersExport.beside(path, wanted, library)
        self.resolutions: Counter[str] = Counter()
        self.unresolved: set[str] = set()

    def card(self, record: dict) -> str | None:
        card, how = self.users.card(record, self.embedded_field, self.id_field)
        self.resolutions[how] += 1
        if how in UNRESOLVED:
            self.unresolved.add(card)
        return card

    def facts(self) -> dict:
        return {"users_export": self.users.path.name if self.users.path else None,
                "reader_resolution": {r: self.resolutions[r] for r in RESOLUTIONS if self.resolutions[r]},
                "readers_unresolved": len(self.unresolved)}


class ResolvedReaderCards(fj.ReaderCards):
    """Erasure's view of a FOLIO answer: a record is a reader's by its UUID or, through the users
    export beside it, by their barcode, so erasing a card finds loans that name only the UUID."""

    def __init__(self, answer: fj.Answer, embedded_field: str, id_field: str) -> None:
        super().__init__(answer, lambda r: fj.reader_card(r, embedded_field, id_field))
        self.embedded_field, self.id_field = embedded_field, id_field

    def cards_of(self, path: Path, records: list, library: Library) -> list[list[str | None]]:
        readers = Readers(path, list(enumerate(records, 1)), self.embedded_field, self.id_field, library)
        return [[self.card_of(r), readers.users.barcode(r.get(self.id_field)) if isinstance(r, dict) else None]
                for r in records]


class UserCards(fj.ReaderCards):
    """Erasure's view of the users export: a user is the reader's by their barcode or by their UUID
    (the card their FOLIO records are stored under when the export did not resolve it)."""

    def __init__(self) -> None:
        super().__init__(fj.USERS, lambda u: None)

    def cards_of(self, path: Path, records: list, library: Library) -> list[list[str | None]]:
        return [[str(r[k]) for k in ("barcode", "id") if r.get(k)] if isinstance(r, dict) else [] for r in records]
