"""Where events go: always a JSON-lines file in the home folder, and an OpenLineage server
(Marquez, OpenMetadata, DataHub) when ``OPENLINEAGE_URL`` is set.

The file is the record. A server that is down or slow costs a warning, never the run:
after a failure the server is left alone for a minute, and the file keeps every event.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport

from warehouse.lake.files import storage_error
from warehouse.lake.locks import table_lock
from warehouse.settings import Settings

log = logging.getLogger("shuku.lineage")

EVENTS_FILE = "events.jsonl"
HTTP_TIMEOUT_S = 2.0
PAUSE_AFTER_FAILURE_S = 60.0


def events_path(settings: Settings) -> Path:
    return settings.lineage_dir / EVENTS_FILE


class Emitter:
    """Sends each event to the file, then to the server if there is one."""

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        self.settings = settings
        self.path = events_path(settings)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = FileTransport(FileConfig(log_file_path=str(self.path), append=True))
        self.url = url.rstrip("/") + "/" if url else None
        # No retries: a server that refuses now will refuse in 0.3 s too, and the run waits for it.
        self.http = HttpTransport(HttpConfig(url=self.url, timeout=HTTP_TIMEOUT_S, retry={"total": 0})) if self.url else None
        self._paused_until = 0.0

    def emit(self, event) -> None:
        self._append(event)
        if self.http is None or time.monotonic() < self._paused_until:
            return
        try:
            self.http.emit(event)
        except Exception as exc:  # noqa: BLE001 - any failure of the server must not fail the run
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_S
            log.warning("OpenLineage server %sapi/v1/lineage did not take the event (%s); it is kept in %s, "
                        "and events of the next %.0f s go to the file only. Check that the server runs.",
                        self.url, type(exc).__name__, self.path, PAUSE_AFTER_FAILURE_S)


    def _append(self, event) -> None:
        # One writer at a time (an event can take several write calls), and a line cut short by a
        # killed writer is ended first, so the next event starts on a line of its own.
        with table_lock(self.settings, "lineage.events"):
            try:
                end_torn_line(self.path)
                self.file.emit(event)
            except (OSError, RuntimeError) as exc:
                cause = exc if isinstance(exc, OSError) else exc.__cause__
                clear = storage_error(cause, self.path) if isinstance(cause, OSError) else None
                if clear is None:
                    raise
                raise clear from exc


def end_torn_line(path: Path) -> bool:
    """Append a newline when ``path`` ends inside a line (a writer died mid-event); True if it did."""
    try:
        with open(path, "rb+") as fh:
            if fh.seek(0, os.SEEK_END) == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return False
            fh.write(b"\n")
            return True
    except FileNotFoundError:
        return False


_emitters: dict[tuple[Path, str | None], Emitter] = {}


def emitter_for(settings: Settings) -> Emitter:
    """The process's emitter for this home folder and the current ``OPENLINEAGE_URL``."""
    url = os.environ.get("OPENLINEAGE_URL") or None
    key = (settings.lineage_dir, url)
    if key not in _emitters:
        _emitters[key] = Emitter(settings, url)
    return _emitters[key]
