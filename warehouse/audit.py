"""The audit trail: append-only meta logs, hash-chained and keyed, so that no entry can be quietly
rewritten by anyone who does not hold the audit key.

Every entry of the chained logs carries three columns:
  entry_seq    its position in the log, from 1
  prev_hash    the entry_hash of the entry before it (64 zeros for the first)
  entry_hash   HMAC-SHA256, under the audit key, of the log's name, entry_seq, prev_hash and the
               entry's other columns as canonical JSON (sorted keys, timestamps in ISO 8601)

The audit key lives outside the lake, like the pseudonym key (``warehouse.audit_key``): whoever
can write the lake but not read the key cannot make an entry that verifies, not even with
Shuku's own code. Appends take an exclusive lock (``.chain.lock`` in the log's folder, ``flock``,
so processes and threads queue) and keep the head in ``.chain-head.json`` beside it, keyed too
(``head_mac``), so an append never reads the whole log and a log cut back together with a head
written for the shorter log is caught. ``verify`` recomputes every hash from the stored rows and
names the first entry that was changed, removed or inserted; it compares with the head file and
with every anchor published (``warehouse.audit_anchor``: each run appends the heads to the alerts
log, and ``--anchor`` names heads kept elsewhere), which catches an old head file put back over a
log cut back to it.

An erasure (the right to be forgotten) legitimately removes a reader's consent entries and
redacts query text naming the reader. It lists each entry it removed or redacted, by
position and hash, in its own erasure ledger row (``log_entries_erased``), itself chained;
``verify`` accepts exactly those entries and reports how many there were.

A trail chained before keys (plain SHA-256) is refused by ``verify`` until ``shuku audit rekey``
(``warehouse.audit_rekey``) has checked it with its old hashes and keyed it; until then appends
go on unkeyed, so the pipeline and the SQL guard keep working.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import polars as pl

from schemas.model import conform, contract_for
from warehouse.audit_key import audit_key
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


class UnkeyedTrail(AuditError):
    """The trail was chained without a key; the message gives the command that keys it."""


def log_dir(settings: Settings, table: str) -> Path:
    return table_dir(settings, table)


def _plain(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _digest(key: bytes | None, message: str) -> str:
    """HMAC-SHA256 under the audit key; plain SHA-256 for a trail chained before keys."""
    data = message.encode("utf-8")
    return hmac.new(key, data, "sha256").hexdigest() if key else hashlib.sha256(data).hexdigest()


def entry_hash(table: str, seq: int, prev_hash: str, row: dict, key: bytes | None = None) -> str:
    """The hash an entry must carry: of the log, its position, its predecessor and its content."""
    content = {k: _plain(v) for k, v in row.items() if k not in CHAIN_COLUMNS}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return _digest(key, f"{table}\n{seq}\n{prev_hash}\n{text}")


def head_mac(key: bytes | None, table: str, seq: int, digest: str) -> str | None:
    return _digest(key, f"head\n{table}\n{seq}\n{digest}") if key else None


def trail_started(settings: Settings) -> bool:
    """Whether any chained log holds an entry or a head (a trail exists to be kept)."""
    return any((log_dir(settings, t) / HEAD_FILE).exists() or next(data_files(settings, t), None) for t in CHAINED)


def append_key(settings: Settings) -> bytes | None:
    """The key to chain new entries with: made on the first entry of a new trail; None (plain
    SHA-256) while a trail chained before keys waits for `shuku audit rekey`."""
    key = audit_key(settings, create=False)
    if key is None and not trail_started(settings):
        key = audit_key(settings, create=True)
    return key


def verify_key(settings: Settings) -> bytes | None:
    """The key to verify with; refuses a trail chained before keys, naming the command that keys it."""
    key = audit_key(settings, create=False)
    if key is None and trail_started(settings):
        raise UnkeyedTrail(f"the audit trail under {settings.home} was chained without a key (before Shuku keyed "
                           "it), so anyone who can write the lake could rewrite it; run `shuku audit rekey` "
                           "(with --anchor for each head you published) to check it with its old hashes and key it.")
    return key


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


@dataclass(frozen=True)
class Head:
    seq: int
    digest: str
    keyed: bool        # its head_mac is the one the audit key gives


def stored_head(settings: Settings, table: str, key: bytes | None) -> Head | None:
    """The head file of a log (None when absent or unreadable)."""
    path = log_dir(settings, table) / HEAD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seq, digest = int(data["entry_seq"]), str(data["entry_hash"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    mac = data.get("head_mac")
    keyed = key is None or (isinstance(mac, str) and hmac.compare_digest(mac, head_mac(key, table, seq, digest)))
    return Head(seq, digest, keyed)


def _write_head(settings: Settings, table: str, seq: int, digest: str, key: bytes | None) -> None:
    head = {"log": table, "entry_seq": seq, "entry_hash": digest}
    if key:
        head["head_mac"] = head_mac(key, table, seq, digest)
    write_text_atomic(log_dir(settings, table) / HEAD_FILE, json.dumps(head) + "\n")


def append_chained(settings: Settings, table: str, frame: pl.DataFrame, path: Path) -> Path:
    """Append ``frame`` (the log's columns, chain columns absent or null) to ``table`` as the new
    file ``path``, each row chained to the one before. Returns ``path``."""
    contract = contract_for(table)
    with _locked(settings, table):
        key = append_key(settings)
        head = stored_head(settings, table, key)
        seq, prev = (head.seq, head.digest) if head is not None and head.keyed else _head_from_entries(settings, table)
        base = frame.drop([c for c in CHAIN_COLUMNS if c in frame.columns])
        base = base.with_columns(pl.lit(None, pl.Int64).alias("entry_seq"), pl.lit(None, pl.Utf8).alias("prev_hash"),
                                 pl.lit(None, pl.Utf8).alias("entry_hash"))
        rows = conform(base, contract).to_dicts()
        for row in rows:
            seq += 1
            row["entry_seq"], row["prev_hash"] = seq, prev
            row["entry_hash"] = prev = entry_hash(table, seq, row["prev_hash"], row, key)
        write_parquet_atomic(conform(pl.DataFrame(rows, schema=contract.polars_schema(), orient="row"), contract), path)
        _write_head(settings, table, seq, prev, key)
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


def _sound(table: str, entry: Entry, key: bytes | None) -> bool:
    return hmac.compare_digest(entry.entry_hash, entry_hash(table, entry.seq, entry.prev_hash, entry.row, key))


def erased_entries(settings: Settings, upto: int | None = None) -> dict[str, dict[int, str]]:
    """``{log: {entry_seq: entry_hash}}`` of the entries erasures removed or redacted, as the ledger's
    entries up to ``upto`` (those that verified) list them."""
    listed: dict[str, dict[int, str]] = {}
    for entry in entries(settings, "meta.erasure_ledger"):
        if upto is not None and (entry.seq is None or entry.seq > upto):
            continue
        for item in entry.row.get(ERASED_COLUMN) or ():
            log, seq, digest = item.split(":")
            listed.setdefault(log, {})[int(seq)] = digest
    return listed


def verify_log(settings: Settings, table: str, erased: dict[int, str] | None = None,
               key: bytes | None = None) -> ChainReport:
    """Recompute one log's chain under ``key``; the report names the first entry changed, removed or
    inserted, or a head file that the key did not write or that the log no longer reaches."""
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
    hashes = {0: GENESIS}
    while expected <= max(last, max(erased, default=0)):
        group = by_seq.get(expected, [])
        if not group:
            if expected in erased:
                prev = hashes[expected] = erased[expected]
                expected, bridged = expected + 1, bridged + 1
                continue
            if expected > last:
                break
            after = min(s for s in by_seq if s > expected)
            return report(f"removed: entry {expected} is missing (the log goes from entry {expected - 1} to entry "
                          f"{after}, {_where(by_seq[after][0])}).", expected - 1, prev, bridged)
        if len(group) > 1:
            genuine = [e for e in group if e.prev_hash == prev
                       and (_sound(table, e, key) or erased.get(expected) == e.entry_hash)]
            intruder = next((e for e in group if e not in genuine[:1]), group[-1])
            return report(f"inserted: {_where(intruder)} claims position {expected}, which "
                          f"{_where(genuine[0]) if genuine else 'another entry'} holds.", expected - 1, prev, bridged)
        entry = group[0]
        if not _sound(table, entry, key):
            if erased.get(expected) == entry.entry_hash:
                bridged += 1
            else:
                return report(f"changed: entry {expected} ({_where(entry)}) does not carry the hash the audit key "
                              "gives it: it was edited, or written without the key.", expected - 1, prev, bridged)
        if entry.prev_hash != prev:
            return report(f"inserted or replaced: entry {expected} ({_where(entry)}) does not follow entry "
                          f"{expected - 1} (its prev_hash is not that entry's hash).", expected - 1, prev, bridged)
        prev = hashes[expected] = entry.entry_hash
        expected += 1
    head_seq = expected - 1
    problem = _head_problem(settings, table, key, head_seq, hashes)
    return report(problem, head_seq, prev, bridged)


def _head_problem(settings: Settings, table: str, key: bytes | None, last: int, hashes: dict[int, str]) -> str | None:
    """What is wrong with a log's head file, given the chain verified up to entry ``last``."""
    where = f"{log_dir(settings, table).relative_to(settings.home)}/{HEAD_FILE}"
    head = stored_head(settings, table, key)
    if head is None:
        if last and key is not None:
            return (f"removed: {where} is missing while the log holds {last} entries; the head was deleted, and "
                    "entries after the last one present may have gone with it (compare with the published anchors).")
        return None
    if not head.keyed:
        return (f"changed: {where} was not written with the audit key (its head_mac does not match); the log "
                "may have been cut back and the head rewritten to match.")
    if head.seq > last:
        return f"removed: the log ends at entry {last} but was appended up to entry {head.seq} ({where})."
    if hashes.get(head.seq) != head.digest:
        return f"rewritten: {where} names entry {head.seq} with a hash the log's entry {head.seq} does not carry."
    return None


def parse_anchor(text: str) -> tuple[str, int, str]:
    """``log:entry_seq:entry_hash`` (as ``shuku audit anchor`` prints it) → its three parts."""
    parts = text.strip().split(":")
    if len(parts) != 3 or parts[0] not in CHAINED or not parts[1].isdigit() or len(parts[2]) != 64:
        raise AuditError(f"anchor {text!r}: expected LOG:ENTRY:HASH as `shuku audit anchor` prints it, "
                         f"LOG one of {', '.join(CHAINED)}, ENTRY a number and HASH 64 hexadecimal characters.")
    return parts[0], int(parts[1]), parts[2].lower()


def verify(settings: Settings, anchors: list[str] = (), published: list[tuple[str, str]] = (),
           legacy: bool = False) -> list[ChainReport]:
    """Verify every chained log (the erasure ledger first: its rows explain erased entries), and
    that each anchor is still an entry of its log: ``anchors`` given by the user, ``published``
    as (anchor, where it was published). ``legacy``: check the plain SHA-256 of a trail chained
    before keys (`shuku audit rekey` does, before keying it)."""
    key = None if legacy else verify_key(settings)
    wanted: dict[str, list[tuple[int, str, str]]] = {}
    for text in anchors:
        log, seq, digest = parse_anchor(text)
        wanted.setdefault(log, []).append((seq, digest, "the published anchor"))
    for text, where in published:
        log, seq, digest = parse_anchor(text)
        wanted.setdefault(log, []).append((seq, digest, f"the anchor published in {where}"))
    ledger = verify_log(settings, "meta.erasure_ledger", key=key)
    erased = erased_entries(settings, upto=ledger.head_seq)
    reports = {"meta.erasure_ledger": ledger}
    for table in CHAINED:
        if table not in reports:
            reports[table] = verify_log(settings, table, erased.get(table), key)
    for log, listed in wanted.items():
        report = reports[log]
        if not report.ok:
            continue
        held = {0: GENESIS} | erased.get(log, {}) | {e.seq: e.entry_hash for e in entries(settings, log)}
        for seq, digest, source in listed:
            if held.get(seq) != digest:
                now = "is missing" if seq not in held else f"has hash {held[seq][:16]}…"
                problem = (f"rewritten: {source} says entry {seq} has hash {digest[:16]}…, the log's entry "
                           f"{seq} {now}; the log was rewritten or cut back at or before entry {seq}.")
                reports[log] = ChainReport(log, report.entries, report.head_seq, report.head_hash, report.erased, problem)
                break
    return [reports[t] for t in CHAINED]
