"""Keying a trail chained before keys: `shuku audit rekey`.

The old trail is checked first with its plain SHA-256 hashes (and any anchor the user
published): a trail that does not verify is not keyed, since keying would bless whatever was
changed. Then the audit key is made and every entry is hashed again under it, in order; an entry
an erasure removed or redacted keeps the hash the ledger lists, as ``verify`` expects. Every new
file is computed before the first is written (each atomically), then the keyed heads. Anchors
published before name the old hashes: give them to this command, which checks them one last time.
"""

from __future__ import annotations

from contextlib import ExitStack

import polars as pl

from warehouse.audit import (CHAINED, GENESIS, AuditError, _locked, _write_head, entries, entry_hash, erased_entries,
                             verify)
from warehouse.audit_key import audit_key
from warehouse.lake.files import write_parquet_atomic
from warehouse.lake.partitions import record_checksum
from warehouse.settings import Settings


def rekey(settings: Settings, anchors: list[str] = ()) -> dict[str, int]:
    """Key a trail chained without a key; entries re-hashed per log. Raises AuditError when the
    trail is keyed already or does not verify with its old hashes."""
    if audit_key(settings, create=False) is not None:
        raise AuditError(f"the audit trail under {settings.home} is keyed already; nothing to do "
                         "(`shuku audit verify` checks it).")
    with ExitStack() as stack:
        for table in CHAINED:
            stack.enter_context(_locked(settings, table))
        broken = [r for r in verify(settings, list(anchors), legacy=True) if not r.ok]
        if broken:
            raise AuditError("the old trail does not verify, so it is not keyed: "
                             + "; ".join(f"{r.log}: {r.problem}" for r in broken))
        key = audit_key(settings, create=True)
        erased = erased_entries(settings)
        frames, heads, counts = {}, {}, {}
        for table in CHAINED:
            listed, prev, seq = erased.get(table, {}), GENESIS, 0
            new: dict[tuple[str, int], tuple[str, str]] = {}
            held = {e.seq: e for e in entries(settings, table)}
            for seq in range(1, max([*held, *listed], default=0) + 1):
                entry = held.get(seq)
                if entry is None:                       # removed by an erasure
                    prev = listed[seq]
                    continue
                if listed.get(seq) == entry.entry_hash:   # redacted by an erasure: its listed hash stays
                    digest = entry.entry_hash
                else:
                    digest = entry_hash(table, seq, prev, entry.row, key)
                new[(entry.file, entry.line)] = (prev, digest)
                prev = digest
            for file in {f for f, _ in new}:
                frame = frames.get(file, pl.read_parquet(settings.home / file, hive_partitioning=False))
                pairs = [new[(file, i)] for i in range(1, frame.height + 1)]
                frames[file] = frame.with_columns(pl.Series("prev_hash", [p for p, _ in pairs], pl.Utf8),
                                                  pl.Series("entry_hash", [d for _, d in pairs], pl.Utf8))
            heads[table], counts[table] = (seq, prev), len(new)
        for file, frame in sorted(frames.items()):
            write_parquet_atomic(frame, settings.home / file)
            record_checksum(settings, settings.home / file)
        for table, (seq, digest) in heads.items():
            _write_head(settings, table, seq, digest, key)
    return counts
