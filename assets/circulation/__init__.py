"""Circulation: loans, returns, renewals and local use from the ILS (Koha CSV or FOLIO JSON)."""

from __future__ import annotations

from pathlib import Path


def parse(path: Path, library):
    """A circulation file of either system, told apart by its bytes: JSON is FOLIO, the rest Koha CSV."""
    from assets.circulation import folio, koha
    from assets.reading import sniff_text

    return (folio if folio.looks_like_json(sniff_text(Path(path)).encode("utf-8")) else koha).parse(path, library)
