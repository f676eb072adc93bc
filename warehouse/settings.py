"""Where Shuku keeps its state: one home folder, taken from ``SHUKU_HOME``.

Nothing here is read at import time; callers ask for ``Settings.from_env()`` when they
run, so a test or a second library can point at another home folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LIBRARY_CONFIG = REPO_ROOT / "config" / "library.yaml"
DEFAULT_LOCK_WAIT_S = 1800.0


@dataclass(frozen=True)
class Settings:
    """Paths under the home folder. ``home`` is always absolute."""

    home: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        return cls(home=Path(env.get("SHUKU_HOME", "var")).expanduser().resolve())

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def restricted(self) -> Path:
        """Raw rows holding direct identifiers that could not be parsed (mode 0700)."""
        return self.home / "restricted"

    @property
    def warehouse_db(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def access_dir(self) -> Path:
        return self.home / "access"

    @property
    def lineage_dir(self) -> Path:
        return self.home / "lineage"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def alerts_log(self) -> Path:
        """Every alert sent, one JSON line each (failed runs and failed checks)."""
        return self.home / "alerts" / "alerts.jsonl"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def library_config(self) -> Path:
        """The library config: ``SHUKU_LIBRARY_CONFIG``, else ``home/library.yaml``, else the demo's."""
        explicit = os.environ.get("SHUKU_LIBRARY_CONFIG")
        if explicit:
            return Path(explicit).expanduser().resolve()
        local = self.home / "library.yaml"
        return local if local.exists() else DEFAULT_LIBRARY_CONFIG

    @property
    def duckdb_temp(self) -> Path:
        """Where DuckDB spills what does not fit in its memory limit (removed when it closes)."""
        return self.home / "tmp" / "duckdb"

    @property
    def duckdb_memory_limit(self) -> str:
        """The memory one DuckDB computation may hold before it spills to ``duckdb_temp``:
        ``SHUKU_DUCKDB_MEMORY`` (a DuckDB size such as "8GB"), else a quarter of the machine's
        memory, at most 3 GB (DuckDB's own default, 80 %, would leave nothing to the rest)."""
        explicit = os.environ.get("SHUKU_DUCKDB_MEMORY")
        if explicit:
            return explicit
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return "3GB"
        return f"{max(256, min(3 * 1024, total // 4 // 2**20))}MB"

    @property
    def lock_wait_s(self) -> float:
        """How long a writer waits for a table another run is writing before it gives up:
        ``SHUKU_LOCK_WAIT`` seconds, else 30 minutes (a nightly run behind a long backfill)."""
        explicit = os.environ.get("SHUKU_LOCK_WAIT")
        try:
            return max(0.0, float(explicit)) if explicit else DEFAULT_LOCK_WAIT_S
        except ValueError:
            raise ValueError(f"SHUKU_LOCK_WAIT={explicit!r} is not a number of seconds; set it to e.g. 1800.") from None

    def exists(self) -> bool:
        """Whether the home folder is there (read-only commands never create it)."""
        return self.home.is_dir()

    def ensure(self) -> "Settings":
        """Create the home folder's skeleton (idempotent), by need to know: the home 0750 (its
        group, the service's, may read what is published), the landing files, keys and
        unparsable raw rows 0700 (the service account alone). Everything written afterwards by
        this process is unreadable by other accounts (umask 027)."""
        os.umask(0o027)
        self.home.mkdir(parents=True, exist_ok=True)
        _restrict(self.home, 0o750)
        for path in (self.lake, self.quarantine, self.access_dir, self.lineage_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        for private in (self.landing, self.secrets_dir, self.restricted):
            private.mkdir(parents=True, exist_ok=True)
            _restrict(private, 0o700)
        return self


def _restrict(path: Path, mode: int) -> None:
    """Take away group and other permissions beyond ``mode`` (a setgid bit the administrator set on
    the home, so that what is created in it keeps the service's group, is kept)."""
    current = path.stat().st_mode
    wanted = (current & 0o7000) | mode
    if current & 0o7777 != wanted and path.stat().st_uid == os.geteuid():    # (not ours: the owner's to set)
        path.chmod(wanted)
