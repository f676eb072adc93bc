"""The line an asset logs when it has prepared one partition, and how `shuku run` reads it back
from the run's event log to show the step, the partitions done and the rows."""

from __future__ import annotations

import re

PREFIX = "partition prepared:"
# The step of a feed's ingest asset is named ``ingest_<feed>`` (assets/staging.py).
INGEST_STEP = "ingest_"
_LINE = re.compile(rf"^{PREFIX} (?P<step>\S+) (?P<key>\S+): (?P<rows>\d+) rows, (?P<quarantined>\d+) quarantined$")


def partition_line(step: str, key: str | None, rows: int, quarantined: int) -> str:
    return f"{PREFIX} {step} {key or 'snapshot'}: {rows} rows, {quarantined} quarantined"


def read_partition_line(text: str) -> tuple[str, str, int, int] | None:
    """(step, partition key, rows, lines quarantined) of a ``partition_line``, else None."""
    found = _LINE.match(text or "")
    if found is None:
        return None
    return found["step"], found["key"], int(found["rows"]), int(found["quarantined"])
