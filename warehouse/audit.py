"""The audit trail: append-only meta logs, hash-chained so that no entry can be quietly rewritten.

Every entry of the chained logs carries three columns:
  entry_seq    its position in the log, from 1
  prev_hash    the entry_hash of the entry before it (64 zeros for the first)
  entry_hash   SHA-256 of the log's name, entry_seq, prev_hash and the entry's other columns
               as canonical JSON (sorted keys, timestamps in ISO 8601)

Appends take an exclusive lock (``.chain.lock`` in the log's folder, ``flock``, so processes
and threads queue) and keep the head in ``.chain-head.json`` beside it, so an append never
reads the whole log. ``verify`` recomputes every hash from the stored rows and names the first
entry that was changed, removed or inserted; it never trusts the head file, only compares
with it (a removed tail shows there). The hashes are plain SHA-256, so anyone can recompute
them: an attacker who rewrites every entry after the one they change keeps the chain
consistent, and that is what ``anchor`` is for: the head printed there, published or
countersigned elsewhere, is checked by ``verify --anchor``.

An erasure (the right to be forgotten) legitimately removes a reader's consent entries and
redacts query text naming the reader. It lists each entry it removed or redacted, by
position and hash, in its own erasure ledger row (``log_entries_erased``), itself chained;
``verify`` accepts exactly those entries and reports how many there were.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import polars as pl

from schemas.model import conform, contract_for
from warehouse.lake.files import write_parquet_atomic, write_text_atomic
from warehouse.lake.paths import data_files, table_dir
from warehouse.settings import Settings

CHAINED = ("meta.access_log", "meta.consent", "meta.erasure_ledger", "meta.ingest_log")
CHAIN_COLUMNS = ("entry_seq", "prev_hash", "entry_hash")
GENESIS = "0" * 64
HEAD_FILE = ".chain-head.json"
LOCK_FILE = ".chain.lock"
ERASED_COLUMN = "log_entries_erased"


class AuditError(ValueError):
    """A bad anchor or log name; the message says what was expected."""


def log_dir(settings: Settings, table: str) -> Path:
    return table_dir(settings, table)


def _plain(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def entry_hash(table: str, seq: int, prev_hash: str, row: dict) -> str:
    """The hash an entry must carry: of the log, its position, its predecessor and its content."""
    content = {k: _plain(v) for k, v in row.items() if k not in CHAIN_COLUMNS}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{table}\n{seq}\n{prev_hash}\n{text}".encode("utf-8")).hexdigest()


@contextmanager
def _locked(settings: Settings, table: str) -> Iterator[None]:
    folder = log_dir(settings, table)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _stored_head(settings: Settings, table: str) -> tuple[int, str] | None:
    path = log_dir(settings, table) / HEAD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return int(data["entry_seq"]), str(data["entry_hash"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _write_head(settings: Settings, table: str, seq: int, digest: str) -> None:
    write_text_atomic(log_dir(settings, table) / HEAD_FILE,
                      json.dumps({"log": table, "entry_seq": seq, "entry_hash": digest}) + "\n")


def append_chained(settings: Settings, table: str, frame: pl.DataFrame, path: Path) -> Path:
    """Append ``frame`` (the log's columns, chain columns absent or null) to ``table`` as the new
    file ``path``, each row chained to the one before. Returns ``path``."""
    contract = contract_for(table)
    with _locked(settings, table):
        head = _stored_head(settings, table)
        if head is None:
            head = _head_from_entries(settings, table)
        seq, prev = head
        base = frame.drop([c for c in CHAIN_COLUMNS if c in frame.columns])
        base = base.with_columns(pl.lit(None, pl.Int64).alias("entry_seq"), pl.lit(None, pl.Utf8).alias("prev_hash"),
                                 pl.lit(None, pl.Utf8).alias("entry_hash"))
        rows = conform(base, contract).to_dicts()
        for row in rows:
            seq += 1
            row["entry_seq"], row["prev_hash"] = seq, prev
            row["entry_hash"] = prev = entry_hash(table, seq, row["prev_hash"], row)
        write_parquet_atomic(conform(pl.DataFrame(rows, schema=contract.polars_schema(), orient="row"), contract), path)
        _write_head(settings, table, seq, prev)
    return path


@dataclass(frozen=True)
class Entry:
    seq: int | None
    prev_hash: str | None
    entry_hash: str | None
    row: dict
    file: str          # relative to the home folder
    line: int          # row in that file, from 1


def entries(settings: Settings, table: str) -> list[Entry]:
    """Every stored entry of a log, ordered by position (then file), as the files hold them."""
    found = []
    for path in sorted(data_files(settings, table)):
        frame = pl.read_parquet(path, hive_partitioning=False)
        for i, row in enumerate(frame.to_dicts(), 1):
            found.append(Entry(row.get("entry_seq"), row.get("prev_hash"), row.get("entry_hash"), row,
                               str(path.relative_to(settings.home)), i))
    return sorted(found, key=lambda e: (e.seq is None, e.seq or 0, e.file, e.line))


def _head_from_entries(settings: Settings, table: str) -> tuple[int, str]:
    chained = [e for e in entries(settings, table) if e.seq is not None]
    if not chained:
        return 0, GENESIS
    last = chained[-1]
    return last.seq, last.entry_hash


@dataclass(frozen=True)
class ChainReport:
    log: str
    entries: int
    head_seq: int
    head_hash: str
    erased: int = 0                  # entries an erasure removed or redacted, as its ledger row lists them
    problem: str | None = None       # the first entry changed, removed or inserted, or an anchor not held

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def anchor(self) -> str:
        return f"{self.log}:{self.head_seq}:{self.head_hash}"


def _where(entry: Entry) -> str:
    return f"{entry.file} row {entry.line}"


def _sound(table: str, entry: Entry) -> bool:
    return entry.entry_hash == entry_hash(table, entry.seq, entry.prev_hash, entry.row)


def erased_entries(settings: Settings) -> dict[str, dict[int, str]]:
    """``{log: {entry_seq: entry_hash}}`` of the entries erasures removed or redacted."""
    listed: dict[str, dict[int, str]] = {}
    for entry in entries(settings, "meta.erasure_ledger"):
        for item in entry.row.get(ERASED_COLUMN) or ():
            log, seq, digest = item.split(":")
            listed.setdefault(log, {})[int(seq)] = digest
    return listed


def verify_log(settings: Settings, table: str, erased: dict[int, str] | None = None) -> ChainReport:
    """Recompute one log's chain; the report names the first entry changed, removed or inserted."""
    erased = erased or {}
    stored = entries(settings, table)

    def report(problem: str | None, seq: int, digest: str, count: int) -> ChainReport:
        return ChainReport(table, len(stored), seq, digest, count, problem)

    expected, prev, bridged = 1, GENESIS, 0
    by_seq: dict[int, list[Entry]] = {}
    for entry in stored:
        if entry.seq is None or entry.prev_hash is None or entry.entry_hash is None:
            return report(f"inserted: {_where(entry)} carries no chain columns (entry_seq, prev_hash, entry_hash); "
                          "it was not appended through Shuku.", expected - 1, prev, bridged)
        by_seq.setdefault(entry.seq, []).append(entry)
    last = max(by_seq, default=0)
    while expected <= max(last, max(erased, default=0)):
        group = by_seq.get(expected, [])
        if not group:
            if expected in erased:
                prev, expected, bridged = erased[expected], expected + 1, bridged + 1
                continue
            if expected > last:
                break
            after = min(s for s in by_seq if s > expected)
            return report(f"removed: entry {expected} is missing (the log goes from entry {expected - 1} to entry "
                          f"{after}, {_where(by_seq[after][0])}).", expected - 1, prev, bridged)
        if len(group) > 1:
            genuine = [e for e in group if e.prev_hash == prev and (_sound(table, e) or erased.get(expected) == e.entry_hash)]
            intruder = next((e for e in group if e not in genuine[:1]), group[-1])
            return report(f"inserted: {_where(intruder)} claims position {expected}, which "
                          f"{_where(genuine[0]) if genuine else 'another entry'} holds.", expected - 1, prev, bridged)
        entry = group[0]
        if not _sound(table, entry):
            if erased.get(expected) == entry.entry_hash:
                bridged += 1
            else:
                return report(f"changed: entry {expected} ({_where(entry)}) no longer matches its entry_hash.",
                              expected - 1, prev, bridged)
        if entry.prev_hash != prev:
            return report(f"inserted or replaced: entry {expected} ({_where(entry)}) does not follow entry "
                          f"{expected - 1} (its prev_hash is not that entry's hash).", expected - 1, prev, bridged)
        prev, expected = entry.entry_hash, expected + 1
    head_seq = expected - 1
    recorded = _stored_head(settings, table)
    if recorded is not None and recorded[0] > head_seq:
        return report(f"removed: the log ends at entry {head_seq} but was appended up to entry {recorded[0]} "
                      f"({log_dir(settings, table).relative_to(settings.home)}/{HEAD_FILE}).", head_seq, prev, bridged)
    return report(None, head_seq, prev, bridged)


def parse_anchor(text: str) -> tuple[str, int, str]:
    """``log:entry_seq:entry_hash`` (as ``shuku audit anchor`` prints it) → its three parts."""
    parts = text.strip().split(":")
    if len(parts) != 3 or parts[0] not in CHAINED or not parts[1].isdigit() or len(parts[2]) != 64:
        raise AuditError(f"anchor {text!r}: expected LOG:ENTRY:HASH as `shuku audit anchor` prints it, "
                         f"LOG one of {', '.join(CHAINED)}, ENTRY a number and HASH 64 hexadecimal characters.")
    return parts[0], int(parts[1]), parts[2].lower()


def verify(settings: Settings, anchors: list[str] = ()) -> list[ChainReport]:
    """Verify every chained log (the erasure ledger first: its rows explain erased entries), and
    that each published ``anchor`` is still an entry of its log."""
    wanted: dict[str, list[tuple[int, str]]] = {}
    for text in anchors:
        log, seq, digest = parse_anchor(text)
        wanted.setdefault(log, []).append((seq, digest))
    ledger = verify_log(settings, "meta.erasure_ledger")
    erased = erased_entries(settings)
    reports = {"meta.erasure_ledger": ledger}
    for table in CHAINED:
        if table not in reports:
            reports[table] = verify_log(settings, table, erased.get(table))
    for log, published in wanted.items():
        report = reports[log]
        if not report.ok:
            continue
        held = {0: GENESIS} | {e.seq: e.entry_hash for e in entries(settings, log)}
        for seq, digest in published:
            if held.get(seq) != digest:
                now = "is missing" if seq not in held else f"has hash {held[seq][:16]}…"
                problem = (f"rewritten: the published anchor says entry {seq} has hash {digest[:16]}…, the log's entry "
                           f"{seq} {now}; the log was rewritten at or before entry {seq}.")
                reports[log] = ChainReport(log, report.entries, report.head_seq, report.head_hash, report.erased, problem)
                break
    return [reports[t] for t in CHAINED]
