"""Erasure, the right to be forgotten: remove one reader from every layer, resumably, and prove it.

Steps, in order, each recorded in a journal in the restricted area as it completes:
  landing     landing files rewritten without the reader's lines (card field parsed per format;
              gzip stays gzip; MARC and COUNTER hold no readers and are left alone)
  lake        every Parquet file of the lake, the quarantine and the restricted area: rows of the
              reader removed (``patron_pid``, or a quarantined raw line holding the card or
              ``pid:<pid>``), any other text naming the reader redacted; only files that hold
              the reader are rewritten, each atomically (temporary file, then rename)
  consent     the reader's consent rows removed; a tombstone keeps the salted request hash
  text        other files of the home folder (lineage events, quality docs): lines naming the reader
              redacted (events name files and tables, not readers, so normally nothing changes)
  models      core tables and marts downstream of a rewritten table recomputed from their SQL
  publish     the per-role databases rebuilt, the warehouse views refreshed
  ledger      one hash-only row in meta.erasure_ledger: counts per table and per kind of file
              (digits masked, so no dated file name dates the reader's visits), one salted digest
              of the landing files' names and hashes, and the hash-chained log entries removed or
              redacted (so `shuku audit verify` accepts them); the journal is then deleted

There is no stored pseudonym mapping to erase: ``patron_pid`` is an HMAC of the card number,
recomputed when needed. The request, its journal and its salted hash: erasure_journal.py.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl

from warehouse.access import publish
from warehouse.audit import CHAINED, ERASED_COLUMN
from warehouse.lake.files import write_bytes_atomic, write_parquet_atomic
from warehouse.lake.partitions import record_checksum
from warehouse.lake.paths import TMP_PREFIX, data_files, table_dir, table_of_file
from warehouse.lake.views import refresh_warehouse_views, sql_string
from warehouse.library import load_library
from warehouse.privacy import append_rows, pseudonymiser, utc_now
from warehouse.privacy.consent import CONSENT_TABLE, FROM_ERASURE
from warehouse.privacy.erasure_journal import STEPS, ErasureError, Reader, home_salt, pending, start, write_journal
from warehouse.privacy.scan import find_values
from warehouse.settings import Settings

LEDGER_TABLE = "meta.erasure_ledger"
DIGIT = re.compile(r"[0-9]")

# (landing file, its decompressed bytes, is-this-card-the-reader) → (new bytes, lines removed)
LandingRewriter = Callable[[Path, bytes, Callable[[str], bool]], tuple[bytes, int]]


class ErasureInterrupted(RuntimeError):
    """Raised by the test hook ``stop_after``: the erasure stopped between two steps."""


@dataclass(frozen=True)
class ErasureHooks:
    """What the warehouse layer cannot know by itself: landing formats and the SQL models."""

    landing_files: Callable[[Settings], list[Path]]
    rewrite_landing: LandingRewriter
    rebuild_models: Callable[[Settings, set[str]], list[str]]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _table_of(settings: Settings, path: Path) -> str:
    """``layer.table`` of a lake or quarantine file; the restricted area's files by folder."""
    return table_of_file(settings, path) or "restricted/" + "/".join(path.relative_to(settings.restricted).parts[:2])


class Erasure:
    """One reader's erasure, driven by its journal."""

    def __init__(self, settings: Settings, journal: Path, hooks: ErasureHooks, card: str | None = None) -> None:
        self.settings, self.path, self.hooks = settings, journal, hooks
        self.state = json.loads(journal.read_text(encoding="utf-8"))
        self.reader = Reader(self.state["pid"], card, pseudonymiser(settings).pid)
        self.card_pattern = load_library(settings.library_config).card_regex()

    # --- journal -------------------------------------------------------------------------
    def _result(self, step: str) -> dict:
        return self.state["steps"][step]["result"]

    def _save(self) -> None:
        write_journal(self.path, self.state)

    def run(self, stop_after: int | None = None) -> dict:
        for number, step in enumerate(STEPS, 1):
            if self.state["steps"][step]["done"]:
                continue
            getattr(self, f"_step_{step}")()
            self.state["steps"][step]["done"] = True
            self._save()
            if stop_after is not None and number >= stop_after and step != STEPS[-1]:
                raise ErasureInterrupted(f"stopped after step {number} ({step}) as asked; "
                                         "`shuku erase --resume` finishes it.")
        ledger = self.state["ledger_row"]
        self.path.unlink()
        return ledger

    # --- steps ---------------------------------------------------------------------------
    def _step_landing(self) -> None:
        done = self._result("landing").setdefault("files", [])
        for path in self.hooks.landing_files(self.settings):
            raw = path.read_bytes()
            zipped = raw[:2] == b"\x1f\x8b"
            data = gzip.decompress(raw) if zipped else raw
            new, removed = self.hooks.rewrite_landing(path, data, self.reader.is_card)
            if not removed:
                continue
            out = gzip.compress(new, mtime=0) if zipped else new
            write_bytes_atomic(path, out, mode=path.stat().st_mode & 0o777)     # its mode kept
            done.append({"file": str(path.relative_to(self.settings.landing)), "lines_removed": removed,
                         "sha256_before": _sha256(raw), "sha256_after": _sha256(out)})
            self._save()

    def _parquet_files(self) -> list[Path]:
        s, consent = self.settings, table_dir(self.settings, CONSENT_TABLE)
        return sorted(p for root in (s.lake, s.quarantine, s.restricted) if root.exists()
                      for p in root.rglob("*.parquet") if not p.name.startswith(TMP_PREFIX) and consent not in p.parents)

    def _step_lake(self) -> None:
        result = self._result("lake")
        removed = result.setdefault("rows_removed", {})
        rewritten = result.setdefault("files", [])
        con = duckdb.connect()
        try:
            for path in self._parquet_files():
                outcome = self._scrub_file(con, path)
                if outcome is None:
                    continue
                table = _table_of(self.settings, path)
                removed[table] = removed.get(table, 0) + outcome
                rewritten.append(str(path.relative_to(self.settings.home)))
                self._save()
        finally:
            con.close()

    def _scrub_file(self, con, path: Path) -> int | None:
        """Rewrite one Parquet file without the reader; rows removed, or None when it does not hold the reader."""
        source = f"read_parquet({sql_string(path)}, hive_partitioning = false)"
        described = con.execute(f"describe select * from {source}").fetchall()
        text = [name for name, kind, *_ in described if kind == "VARCHAR"]
        raw_lines = path.is_relative_to(self.settings.quarantine) or path.is_relative_to(self.settings.restricted)
        checks = []
        if "patron_pid" in text:
            checks.append('"patron_pid" = $pid')
        checks += [f'contains("{c}", $needle{i})' for c in text for i in range(len(self.reader.needles()))]
        params = {"pid": self.reader.pid} | {f"needle{i}": n for i, n in enumerate(self.reader.needles())}
        params = {k: v for k, v in params.items() if any(f"${k}" in c for c in checks)}
        hit = bool(checks) and con.execute(f"select count(*) from {source} where {' or '.join(checks)}",
                                           params).fetchone()[0] > 0
        frame = None
        if not hit and raw_lines and text:
            # A quarantined line may hold the card of a reader erased by pseudonym only.
            frame = pl.read_parquet(path, hive_partitioning=False)
            hit = any(self.reader.holds(v, self.card_pattern) for c in text for v in frame.get_column(c).to_list())
        if not hit:
            return None
        frame = frame if frame is not None else pl.read_parquet(path, hive_partitioning=False)
        before = frame.height
        keep = pl.Series([True] * before)
        if "patron_pid" in frame.columns:
            keep &= (frame.get_column("patron_pid") != self.reader.pid).fill_null(True)
        if raw_lines:
            holds = [any(self.reader.holds(row[c], self.card_pattern) for c in text)
                     for row in frame.select(text).iter_rows(named=True)]
            keep &= ~pl.Series(holds, dtype=pl.Boolean)
        table = _table_of(self.settings, path)
        if table in CHAINED:
            self._note_erased(table, frame.filter(~keep))
        frame = frame.filter(keep)
        redacted = frame.with_columns([pl.col(c).map_elements(lambda v: self.reader.redact(v, self.card_pattern),
                                                              return_dtype=pl.Utf8) for c in text])
        if table in CHAINED:
            changed = pl.any_horizontal([pl.col(c).ne_missing(redacted.get_column(c)) for c in text])
            self._note_erased(table, frame.filter(changed))
        write_parquet_atomic(redacted, path)
        record_checksum(self.settings, path)   # the new bytes are the right ones now
        return before - redacted.height

    def _note_erased(self, table: str, rows: pl.DataFrame) -> None:
        """Record chained log entries this erasure removes or redacts, for its ledger row."""
        if rows.height and "entry_hash" in rows.columns:
            listed = self.state.setdefault("log_entries_erased", [])
            listed += [f"{table}:{seq}:{digest}" for seq, digest in rows.select("entry_seq", "entry_hash").iter_rows()
                       if seq is not None and f"{table}:{seq}:{digest}" not in listed]

    def _step_consent(self) -> None:
        result = self._result("consent")
        removed = result.get("rows_removed", 0)
        for path in sorted(data_files(self.settings, CONSENT_TABLE)):
            frame = pl.read_parquet(path, hive_partitioning=False)
            keep = (frame.get_column("patron_pid") != self.reader.pid).fill_null(True)
            if keep.all():
                continue
            removed += int((~keep).sum())
            self._note_erased(CONSENT_TABLE, frame.filter(~keep))
            if keep.any():
                write_parquet_atomic(frame.filter(keep), path)
            else:
                path.unlink()    # one file per change: the change was the reader's alone
            result["rows_removed"] = removed
            self._save()
        if not result.get("tombstone"):
            now = utc_now()
            append_rows(self.settings, CONSENT_TABLE, [{
                "patron_pid": None, "pid_key_version": None, "profiling": None, "recommendations": None,
                "changed_at": now, "source": FROM_ERASURE, "changed_by": self.state["requested_by"],
                "erasure_hash": self.state["request_hash"]}], now)
            result["tombstone"] = True
        result["rows_removed"] = removed

    def _text_files(self) -> list[Path]:
        """Files other than the lake's: lineage events, quality docs, logs (landing, secrets and
        the Dagster instance excepted: the landing step has done the first, the others hold no reader rows)."""
        s = self.settings
        skip = (s.landing, s.lake, s.quarantine, s.restricted, s.access_dir, s.secrets_dir, s.dagster_home)
        return sorted(p for p in s.home.rglob("*") if p.is_file() and not any(f in p.parents for f in skip)
                      and p.suffix not in (".parquet", ".duckdb", ".wal") and not p.name.startswith(TMP_PREFIX))

    def _step_text(self) -> None:
        result = self._result("text")
        files = result.setdefault("files", [])
        for path in self._text_files():
            raw = path.read_bytes()
            if b"\0" in raw[:4096]:
                continue    # binary
            text = raw.decode("utf-8", errors="surrogateescape")
            if not self.reader.holds(text, self.card_pattern):
                continue
            lines = text.splitlines(keepends=True)
            changed = [self.reader.redact(line, self.card_pattern) for line in lines]
            count = sum(1 for a, b in zip(lines, changed) if a != b)
            data = "".join(changed).encode("utf-8", errors="surrogateescape")
            write_bytes_atomic(path, data, mode=path.stat().st_mode & 0o777)
            files.append({"file": str(path.relative_to(self.settings.home)), "lines_redacted": count})
            self._save()

    def _step_models(self) -> None:
        changed = {t for t, n in self._result("lake").get("rows_removed", {}).items() if n}
        if self._result("consent").get("rows_removed"):
            changed.add(CONSENT_TABLE)
        self._result("models")["rebuilt"] = self.hooks.rebuild_models(self.settings, changed) if changed else []

    def _step_publish(self) -> None:
        if any(self.settings.access_dir.glob("*.duckdb")):
            # Afresh: a file copied from the last one could keep the erased rows in its freed pages.
            self._result("publish")["roles"] = [p.role for p in publish(self.settings, incremental=False)]
        refresh_warehouse_views(self.settings)

    def _step_ledger(self) -> None:
        lake, landing = self._result("lake"), self._result("landing")
        removed = {t: n for t, n in sorted(lake.get("rows_removed", {}).items()) if not t.startswith("restricted/")}
        restricted = sum(n for t, n in lake.get("rows_removed", {}).items() if t.startswith("restricted/"))
        if restricted:
            removed["restricted"] = restricted
        if self._result("consent").get("rows_removed"):
            removed[CONSENT_TABLE] = self._result("consent")["rows_removed"]
        rewritten = [_table_of(self.settings, self.settings.home / p) for p in lake.get("files", [])]
        rewritten = [t if "/" not in t else undated(t) for t in rewritten]
        rewritten += [undated(f["file"]) for f in self._result("text").get("files", [])]
        now = utc_now()
        row = {"erased_at": now, "started_at": dt.datetime.fromisoformat(self.state["started_at"]),
               "request_hash": self.state["request_hash"], "requested_by": self.state["requested_by"],
               "requested_with": self.state["requested_with"],
               "tables_rewritten": sorted(t for t in set(removed) | set(rewritten) if not t.startswith("restricted")
                                          and "/" not in t),
               "partitions_rewritten": _counted(rewritten), "models_rebuilt": self._result("models").get("rebuilt", []),
               "rows_removed": json.dumps(removed, sort_keys=True), "rows_removed_count": sum(removed.values()),
               "landing_files": json.dumps(landing_proof(self.settings, landing.get("files", [])), sort_keys=True),
               "landing_files_count": len(landing.get("files", [])),
               ERASED_COLUMN: sorted(self.state.get("log_entries_erased", []))}
        append_rows(self.settings, LEDGER_TABLE, [row], now)
        self.state["ledger_row"] = row


def undated(path: str) -> str:
    """A file's name with every digit as ``#``: what kind of file it is, not which day it holds."""
    return DIGIT.sub("#", path)


def _counted(names: list[str]) -> list[str]:
    """``name (N files)`` per distinct name, sorted."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return [f"{name} ({n} file{'s' if n > 1 else ''})" for name, n in sorted(counts.items())]


def landing_proof(settings: Settings, files: list[dict]) -> dict:
    """What the ledger keeps of the landing files rewritten: per kind of file (digits masked) how many
    files and lines, and one digest of every file's name and SHA-256 before and after, under the home's
    secret salt. The list itself would date the reader's visits; the digest still commits to it."""
    kinds: dict[str, dict[str, int]] = {}
    for f in files:
        kind = kinds.setdefault(undated(f["file"]), {"files": 0, "lines_removed": 0})
        kind["files"] += 1
        kind["lines_removed"] += f["lines_removed"]
    listing = "\n".join(sorted(f"{f['file']}\t{f['sha256_before']}\t{f['sha256_after']}" for f in files))
    return {"kinds": kinds, "digest": hmac.new(home_salt(settings), listing.encode("utf-8"), "sha256").hexdigest()}


def erase(settings: Settings, hooks: ErasureHooks, *, card: str | None = None, pid: str | None = None,
          requested_by: str | None = None, stop_after: int | None = None) -> dict:
    """Erase one reader everywhere; returns the ledger row. ``stop_after`` (tests) interrupts after step k."""
    path, reader = start(settings, card=card, pid=pid, requested_by=requested_by)
    return Erasure(settings, path, hooks, card=reader.card).run(stop_after)


def resume(settings: Settings, hooks: ErasureHooks) -> list[dict]:
    """Finish every erasure whose journal is still in the restricted area."""
    return [Erasure(settings, path, hooks).run() for path in pending(settings)]


def verify(settings: Settings, *, card: str | None = None, pid: str | None = None) -> list[tuple[str, str]]:
    """Where under the home folder the reader's card number or pseudonym is still found ([] when nowhere)."""
    if card is None and pid is None:
        raise ErasureError("name the reader to look for by card number or by pid.")
    pid = pid or pseudonymiser(settings).pid(card)
    return find_values(settings, {pid, card} - {None})
