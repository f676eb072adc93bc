"""An erasure's request and its journal: the reader it names, the salted hash the ledger keeps,
and the journal in the restricted area that lets an interrupted erasure finish (``--resume``).

The journal holds the pseudonym (never the card) while the erasure runs, in the 0700
restricted area, with each step's result as it completes; erasure.py runs the steps and
deletes the journal at the end. The ledger keeps neither pseudonym nor card: only SHA-256 of
the pseudonym with a per-home secret salt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from warehouse.grants import current_account
from warehouse.lake.files import write_text_atomic
from warehouse.privacy import pseudonymiser, utc_now
from warehouse.settings import Settings

SALT_FILE = "erasure.salt"
JOURNAL_DIR = "erasure"
REDACTED = "[erased]"
# The steps of an erasure, in order (erasure.py says what each does).
STEPS = ("landing", "lake", "consent", "text", "models", "publish", "ledger")
PID = re.compile(r"^[0-9a-f]{64}$")


class ErasureError(RuntimeError):
    """An erasure cannot start or go on; the message says why and what to do."""


@dataclass
class Reader:
    """The reader being erased: the pseudonym, and the card only if given (kept in memory)."""

    pid: str
    card: str | None = None
    _pid_of: Callable[[str], str] | None = None
    _seen: dict[str, bool] = field(default_factory=dict)

    def is_card(self, card: str | None) -> bool:
        """Whether ``card`` (a parsed card field) is this reader's, by its pseudonym."""
        if not card:
            return False
        card = card.strip()
        if card not in self._seen:
            self._seen[card] = self._pid_of(card) == self.pid
            if self._seen[card]:
                self.card = card
        return self._seen[card]

    def needles(self) -> list[str]:
        return [n for n in (self.pid, self.card) if n]

    def holds(self, text: str | None, card_pattern: re.Pattern[str]) -> bool:
        """Whether ``text`` names the reader: the pseudonym, or a card token of this reader."""
        if not text:
            return False
        return self.pid in text or any(self.is_card(m.group(0)) for m in card_pattern.finditer(text))

    def redact(self, text: str | None, card_pattern: re.Pattern[str]) -> str | None:
        if not text:
            return text
        text = text.replace(self.pid, REDACTED)
        return card_pattern.sub(lambda m: REDACTED if self.is_card(m.group(0)) else m.group(0), text)


def home_salt(settings: Settings) -> bytes:
    """The home folder's secret salt for request hashes (a 0600 file, made on first use)."""
    path = settings.secrets_dir / SALT_FILE
    if not path.exists():
        settings.ensure()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def request_hash(settings: Settings, pid: str) -> str:
    return hashlib.sha256(home_salt(settings) + pid.encode("utf-8")).hexdigest()


def journal_dir(settings: Settings) -> Path:
    return settings.restricted / JOURNAL_DIR


def pending(settings: Settings) -> list[Path]:
    """Journals of erasures that started and did not finish."""
    folder = journal_dir(settings)
    return sorted(folder.glob("*.json")) if folder.exists() else []


def write_journal(path: Path, data: dict) -> None:
    """Write a journal atomically, readable by its owner only."""
    write_text_atomic(path, json.dumps(data, indent=1, default=str), mode=0o600)


def start(settings: Settings, *, card: str | None = None, pid: str | None = None,
          requested_by: str | None = None) -> tuple[Path, Reader]:
    """Open the journal of a new erasure (or find the pending one for the same reader)."""
    if (card is None) == (pid is None):
        raise ErasureError("name the reader by --card CARD or by --pid PID (one of them).")
    pseudo = pseudonymiser(settings)
    if pid is not None and not PID.match(pid):
        raise ErasureError("--pid: expected 64 lowercase hexadecimal characters (a patron_pid); "
                           "copy it from the warehouse, or give --card instead.")
    pid = pid or pseudo.pid(card)
    digest = request_hash(settings, pid)
    path = journal_dir(settings) / f"{digest[:16]}.json"
    if not path.exists():
        steps = {s: {"done": False, "result": {}} for s in STEPS}
        write_journal(path, {"request_hash": digest, "pid": pid, "requested_with": "card" if card else "pid",
                             "requested_by": requested_by or current_account().name, "started_at": utc_now().isoformat(),
                             "steps": steps, "ledger_row": None})
    return path, Reader(pid, card, pseudo.pid)
