"""What a log may keep of a query: its text with card numbers and pseudonyms taken out.

A card number typed into a query, or a pseudonym (``patron_pid``, 64 hexadecimal characters)
copied from a result, would otherwise make the access log a record of which reader a member of
staff looked up, readable by the auditor. Any run of exactly 64 hexadecimal characters is
taken for a pseudonym: a hash typed into a query goes too, which costs the log little.
"""

from __future__ import annotations

import hashlib
import re

PSEUDONYM = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")
CARD_MARK, PSEUDONYM_MARK = "<card number>", "<pseudonym>"


def redact_logged(text: str | None, card: re.Pattern[str]) -> str | None:
    """``text`` with card numbers and pseudonyms replaced by markers."""
    if text is None:
        return None
    return PSEUDONYM.sub(PSEUDONYM_MARK, card.sub(CARD_MARK, text))


def logged_digest(logged_text: str) -> str:
    """SHA-256 of the redacted text: a digest of the typed text would let anyone try every card
    number (or every pseudonym) until one matched."""
    return hashlib.sha256(logged_text.encode("utf-8")).hexdigest()
