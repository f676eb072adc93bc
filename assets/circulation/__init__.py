"""Circulation: loans, returns, renewals and local use from the ILS (Koha CSV or FOLIO JSON)."""

from __future__ import annotations

from pathlib import Path


def parse(path: Path, library):
    """A circulation file of either system, told apart by its bytes: JSON is FOLIO, the rest Koha CSV."""
    from assets.circulation import folio, koha
    from warehouse.textio import read_bytes

    return (folio if folio.looks_like_json(read_bytes(Path(path))[:4096]) else koha).parse(path, library)
