"""The demo's library config: the project's library (config/library.yaml) with seats for the
population of the scale generated, so occupancy peaks where a library's would (about half the
seats taken on a term weekday, more in exam weeks) instead of a few per cent."""

from __future__ import annotations

import re
from pathlib import Path

from .scales import seat_share

SEATS = re.compile(r"(\bseats:\s*)(\d+)")


def scaled_library_text(text: str, scale: str) -> str:
    """``text`` (a library config) with every zone's ``seats`` scaled to ``scale``'s readers, at least one."""
    share = seat_share(scale)
    if share == 1:
        return text
    scaled = SEATS.sub(lambda m: f"{m.group(1)}{max(1, round(int(m.group(2)) * share)) if int(m.group(2)) else 0}",
                       text)
    return (f"# Written by `shuku demo` for its {scale} library: {Path('config/library.yaml')} with seats in\n"
            f"# proportion to the readers' visits ({share:.3f} of the university's). Edit freely; the demo keeps it.\n"
            + scaled)


def write_demo_library(home: Path, source: Path, scale: str) -> Path | None:
    """Write ``home/library.yaml`` from ``source`` for ``scale``, unless the home has one already;
    the path written, or None."""
    target = Path(home) / "library.yaml"
    if target.exists():
        return None
    tmp = target.with_name(".library.yaml.tmp")
    tmp.write_text(scaled_library_text(source.read_text(encoding="utf-8"), scale), encoding="utf-8")
    tmp.replace(target)
    return target
