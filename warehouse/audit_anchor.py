"""Anchors: the heads of the chained logs, published where an outside party can keep them.

Each run appends the heads to the alerts log (an ``audit_anchor`` alert, sent on by e-mail and
webhook when configured), and the transparency report lists them. ``shuku audit verify`` checks
every anchor found in the alerts log, and those given with ``--anchor``: a log rewritten or cut
back after a head was published no longer holds that head, even with an old head file put back.
An anchor is ``LOG:ENTRY:HASH``; the hash is keyed, so a party without the key can keep it and
ask whether the log still holds it, but cannot make one.
"""

from __future__ import annotations

import json

from warehouse.audit import CHAINED, GENESIS, ChainReport, parse_anchor, stored_head, verify
from warehouse.audit_key import audit_key
from warehouse.settings import Settings

ANCHOR_ALERT = "audit_anchor"
UNKEYED_ALERT = "audit_unkeyed"
ANCHOR_OPTION = "--anchor "


def current_anchors(settings: Settings) -> list[str] | None:
    """Each log's head as LOG:ENTRY:HASH, from the head files; None while the trail has no key
    (nothing keyed to publish). A head file the key did not write is left out (verify names it)."""
    key = audit_key(settings, create=False)
    if key is None:
        return None
    anchors = []
    for table in CHAINED:
        head = stored_head(settings, table, key)
        if head is None:
            anchors.append(f"{table}:0:{GENESIS}")
        elif head.keyed:
            anchors.append(f"{table}:{head.seq}:{head.digest}")
    return anchors


def anchor_commands(anchors: list[str]) -> list[str]:
    """The commands that check the anchors later, as an alert's ``see`` lines carry them."""
    return [f"shuku audit verify {ANCHOR_OPTION}{a}" for a in anchors]


def published_anchors(settings: Settings) -> list[tuple[str, str]]:
    """(anchor, where) of every anchor the alerts log holds; lines that do not parse are left out."""
    path = settings.alerts_log
    if not path.exists():
        return []
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or row.get("kind") != ANCHOR_ALERT:
            continue
        for command in row.get("see") or ():
            text = str(command).partition(ANCHOR_OPTION)[2]
            try:
                parse_anchor(text)
            except ValueError:
                continue
            found.append((text, f"{path.relative_to(settings.home)} line {number} ({row.get('at') or 'undated'})"))
    return found


def verify_trail(settings: Settings, anchors: list[str] = ()) -> list[ChainReport]:
    """Verify every chained log against the anchors given and those the alerts log holds."""
    return verify(settings, list(anchors), published_anchors(settings))
