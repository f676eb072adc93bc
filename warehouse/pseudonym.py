"""Pseudonymisation: card numbers become ``patron_pid = HMAC-SHA256(key, card number)``.

The key lives outside the warehouse: in ``SHUKU_PSEUDONYM_KEY`` (hex) or in a 0600 key file
under the home folder's ``secrets/`` (created on first use). Each key has a version, stored
beside every pseudonym, so a key can be rotated without mixing pseudonyms silently.
DuckDB and polars have no keyed HMAC, so it is computed once per distinct card in Python
(a university has tens of thousands of readers, not millions) and joined back.
"""

from __future__ import annotations

import hmac
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from warehouse.keys import KeyFileError, create_key_file, read_key_file

KEY_FILE = "pseudonym.key"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


class PseudonymKeyError(RuntimeError):
    """The pseudonymisation key cannot be read; the message says where it was looked for."""


KNOWN_LIMIT = 500_000     # pseudonyms kept per process (a university has tens of thousands of readers)


@dataclass(frozen=True)
class Pseudonymiser:
    key: bytes
    version: int
    # Card numbers already pseudonymised by this process: the same readers come back every day,
    # and a run over a year of partitions would otherwise compute each reader's HMAC hundreds of times.
    _known: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, secrets_dir: Path, environ: dict[str, str] | None = None) -> "Pseudonymiser":
        """The key from ``SHUKU_PSEUDONYM_KEY`` (+ ``SHUKU_PSEUDONYM_KEY_VERSION``), else the key file."""
        env = os.environ if environ is None else environ
        if env.get("SHUKU_PSEUDONYM_KEY"):
            try:
                key = bytes.fromhex(env["SHUKU_PSEUDONYM_KEY"])
            except ValueError:
                raise PseudonymKeyError("SHUKU_PSEUDONYM_KEY is not hexadecimal; set it to 64 hex characters.") from None
            return cls(key=key, version=int(env.get("SHUKU_PSEUDONYM_KEY_VERSION", "1")))
        path = Path(secrets_dir) / KEY_FILE
        create_key_file(path)
        try:
            version, key = read_key_file(path)
        except KeyFileError as exc:
            raise PseudonymKeyError(str(exc)) from None
        return cls(key=key, version=version)

    def pid(self, card_number: str) -> str:
        known = self._known.get(card_number)
        if known is None:
            known = hmac.digest(self.key, card_number.strip().encode("utf-8"), "sha256").hex()
            if len(self._known) >= KNOWN_LIMIT:
                self._known.clear()
            self._known[card_number] = known
        return known

    def mapping(self, cards: pl.Series) -> pl.DataFrame:
        """Distinct card numbers → their pseudonyms, as a frame to join."""
        distinct = cards.drop_nulls().unique().sort().to_list()
        return pl.DataFrame({"card_number": distinct, "patron_pid": [self.pid(c) for c in distinct]},
                            schema={"card_number": pl.Utf8, "patron_pid": pl.Utf8})

    def pseudonymise(self, frame: pl.DataFrame, column: str = "card_number") -> pl.DataFrame:
        """Replace ``column`` by ``patron_pid`` and ``pid_key_version`` (null where the card is null)."""
        if column not in frame.columns:
            return frame
        position = frame.columns.index(column)
        mapping = self.mapping(frame.get_column(column)).rename({"card_number": column})
        joined = frame.join(mapping, on=column, how="left", maintain_order="left")
        joined = joined.with_columns(
            pl.when(pl.col("patron_pid").is_not_null()).then(pl.lit(self.version, pl.Int64))
            .otherwise(None).alias("pid_key_version"))
        ordered = [c for c in frame.columns if c != column]
        ordered[position:position] = ["patron_pid", "pid_key_version"]
        return joined.select(ordered)

    def scrub(self, texts: pl.Series, card_pattern: str, cut_tail: bool = False) -> pl.Series:
        """Raw text safe to keep: card numbers → ``pid:<pseudonym>``, e-mails and mobiles redacted.
        ``cut_tail`` (lines that may have been cut off): the start of a card number at the end goes too."""
        card = re.compile(card_pattern)

        def clean(text: str | None) -> str | None:
            if text is None:
                return None
            text = card.sub(lambda m: f"pid:{self.pid(m.group(0))}", text)
            text = EMAIL.sub("[email]", text)
            text = MOBILE.sub("[phone]", text)
            return cut_card_tail(text, card) if cut_tail else text

        return texts.map_elements(clean, return_dtype=pl.Utf8)


CARD_CUT = "[card cut]"
TAIL = 64                   # characters at the end of a line that may hold the start of a card number
FILLERS = "09Aa"            # what a cut-off card number may have gone on with


@lru_cache(maxsize=16)
def _widest(card: re.Pattern[str]) -> int:
    """How many characters a completion of a cut-off card may need: the widest match the pattern
    allows (a card number has a length), at most half the tail."""
    try:
        from re import _parser     # the standard library's own reading of the pattern
        widest = _parser.parse(card.pattern, card.flags).getwidth()[1]
    except Exception:  # noqa: BLE001 - any pattern it cannot size is completed as far as ever
        return TAIL // 2
    return max(1, min(widest, TAIL // 2))


def cut_card_tail(text: str, card: re.Pattern[str]) -> str:
    """``text`` without a card number's beginning at its end: a line cut off mid-card keeps a prefix
    that can single out a reader. A card match that would straddle the end, were the line completed
    with digits or letters, is cut at its start."""
    start = max(0, len(text) - TAIL)
    tail = text[start:]
    for filler in FILLERS:
        for extra in range(1, _widest(card) + 1):     # a longer completion can make no other match
            for match in card.finditer(tail + filler * extra):
                if match.start() < len(tail) < match.end():
                    return text[:start + match.start()] + CARD_CUT
    return text
