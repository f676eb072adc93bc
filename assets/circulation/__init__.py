"""Circulation: loans, returns, renewals and local use, and the holds readers place, from the ILS
(Koha CSV or FOLIO JSON)."""

from __future__ import annotations

from pathlib import Path

# Words only a FOLIO check-ins answer has at its start.
CHECK_IN_MARKS = ('"checkIns"', '"occurredDateTime"')


def parse(path: Path, library):
    """A circulation file of either system, told apart by its first characters (in any encoding): JSON
    is FOLIO (check-ins or loans, by their fields), the rest Koha CSV."""
    from assets.circulation import folio, folio_check_ins, koha
    from assets.reading import sniff_text

    head = sniff_text(Path(path))
    if not folio.looks_like_json(head.encode("utf-8")):
        return koha.parse(path, library)
    return (folio_check_ins if any(m in head for m in CHECK_IN_MARKS) else folio).parse(path, library)


def parse_holds(path: Path, library):
    """A holds file of either system: JSON is FOLIO requests, the rest a Koha reserves CSV."""
    from assets.circulation import folio, folio_requests, holds
    from assets.reading import sniff_text

    return (folio_requests if folio.looks_like_json(sniff_text(Path(path)).encode("utf-8")) else holds).parse(
        path, library)


def parse_batches(path: Path, library):
    """``parse`` a batch at a time: a Koha CSV in batches of lines, a FOLIO answer (read whole) as one."""
    from assets.circulation import folio, koha
    from assets.reading import sniff_text

    if not folio.looks_like_json(sniff_text(Path(path)).encode("utf-8")):
        return koha.parse_batches(path, library)
    return iter([parse(path, library)])


def parse_holds_batches(path: Path, library):
    """``parse_holds`` a batch at a time: a Koha reserves CSV in batches of lines, FOLIO requests as one."""
    from assets.circulation import folio, holds
    from assets.reading import sniff_text

    if not folio.looks_like_json(sniff_text(Path(path)).encode("utf-8")):
        return holds.parse_batches(path, library)
    return iter([parse_holds(path, library)])
