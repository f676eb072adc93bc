"""Write, audit, publish: whether new partitions may replace the stored ones.

Each partition of a run is written beside the one it replaces (staged, readers still see the
stored one), the blocking (error-severity) checks of its tables run on its new rows
(`quality.checks.audit`), and only then is it published, or refused: a refused partition
leaves the stored one as it was. `write_audit_publish` does this, in this order, for any
asset that stages what it writes (the staging tables: `assets.ingest.prepare_partition`).

A delivery is also refused when one of its files was mostly unreadable (more than the library
config's ``max_quarantined_share`` of its lines quarantined for a reason other than their
date: most likely not the export it is named as). A refused delivery's quarantined lines and
its files' ingest-log rows (``rejected``) are still recorded, and the run fails with the
reason in the library's words. A file of which nothing was understood (no row, no rejected
line) is logged ``unrecognised`` and not loaded; the other files of the run are.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Protocol

from assets.feeds import FEEDS, Feed
from assets.ingest_log import LOADED
from assets.parsing import Reason
from assets.refusal import FileRefusal, rerun_command
from quality.checks import audit
from quality.results import CheckOutcome
from schemas.model import Contract
from warehouse.lake.locks import table_lock
from warehouse.lake.partitions import PendingPartition, discard_partition
from warehouse.library import Library
from warehouse.settings import Settings

class Candidate(Protocol):
    """One partition key's new data: staged beside the stored partitions of the tables written."""

    key: str                   # the partition key ('' for a snapshot)
    refused: str | None        # why it may not replace the stored partitions (None: it may, so far)

    @property
    def pending(self) -> dict[str, PendingPartition]:
        """Its staged partition of each table (empty once settled)."""


def refusal_for_file(feed: Feed, library: Library, relative: str, read: int, reasons: Counter,
                     key: str | None = None) -> FileRefusal | None:
    """Why a file is refused whole (its share of lines that could not be read is above the library's
    limit), else None. Rows dated in another partition were read: a COUNTER report of a year
    delivered in a month's folder is understood, and a blocking row count catches a file of
    another day."""
    reasons = Counter({str(r): n for r, n in reasons.items() if r != Reason.WRONG_PARTITION and n})
    if not read or sum(reasons.values()) / read <= library.max_quarantined_share:
        return None
    return FileRefusal(feed.name, feed.source, feed.expected, relative, key or None, read, reasons,
                       library.max_quarantined_share, rerun_command(feed.name, feed.partitioning, key))


def unrecognised_message(feed: Feed, relative: str) -> str:
    """What is said of a landing file from which neither a row nor a rejected line came."""
    return (f"landing/{relative}: no row was read from it and none was rejected: its structure was not "
            f"recognised as a {feed.expected}. Not loaded (meta.ingest_log: unrecognised); check it with "
            f"`shuku parse {feed.source} <file>`.")


def expected_of_source(source: str) -> str:
    """What a file of a landing source should be (for `shuku parse`)."""
    return " or ".join(dict.fromkeys(f.expected for f in FEEDS if f.source == source))


def refusal_message(feed: Feed, refused: list, reasons: list[str]) -> str:
    """Why a delivery's partitions (`assets.ingest.PartitionOutcome`) were refused after their
    blocking checks failed, naming its files."""
    keys = [o.key or "snapshot" for o in refused]
    files = [f"landing/{f.source_file}" for o in refused for f in o.files if f.file_status == LOADED]
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return (f"{len(reasons)} blocking check(s) failed on the new rows of {feed.name} "
            f"{keys[0] if len(keys) == 1 else ', '.join(keys)} (from {shown}): {'; '.join(reasons)}. "
            "Refused: the stored partition(s) were kept as they were. Fix the file(s) or the contract, then re-run.")


def _audit(settings: Settings, contracts: list[Contract], candidates: list[Candidate], run_id: str
           ) -> tuple[list[str], dict[str, list[CheckOutcome]]]:
    """The failing blocking checks (as text) and every table's outcomes on ``candidates`` together."""
    reasons, audited = [], {}
    for contract in contracts:
        key_of = (lambda o: o.key) if contract.partition_column is not None else (lambda o: None)
        pending = {key_of(o): p.staged for o in candidates for p in o.pending.values()
                   if p.table == contract.qualified_name}
        audited[contract.qualified_name] = audit(contract, settings, pending, run_id=run_id)
        for failed in (o for o in audited[contract.qualified_name] if not o.success):
            example = f"; e.g. {failed.sample[0]}" if failed.sample else ""
            reasons.append(f"{contract.qualified_name} {failed.check_name}: {failed.observed_value}{example}")
    return reasons, audited


Refusal = Callable[[list[Candidate], list[str]], str]


def audit_run(settings: Settings, contracts: list[Contract], candidates: list[Candidate], run_id: str,
              refusal: Refusal) -> tuple[list[str | None], dict[str, list[CheckOutcome]]]:
    """Run the blocking checks of each table on the partitions this run staged and has not refused
    yet, all of them at once. When one fails on a backfill, each partition is checked again alone
    and only those failing are refused; when none fails alone (rows of two partitions collide),
    every one is, with ``refusal(refused, reasons)`` as the reason. Returns the partition keys
    whose outcomes stand for the published partitions, and those outcomes per table (none after
    a refusal: the rest is checked again)."""
    candidates = [o for o in candidates if o.pending and not o.refused]
    if not candidates:
        return [], {}
    reasons, audited = _audit(settings, contracts, candidates, run_id)
    if not reasons:
        return [o.key or None for o in candidates], audited
    if len(candidates) > 1:
        alone = [(o, _audit(settings, contracts, [o], run_id)[0]) for o in candidates]
        failing = [(o, r) for o, r in alone if r]
        if failing:
            for outcome, own in failing:
                outcome.refused = refusal([outcome], own)
            return [], {}
    message = refusal(candidates, reasons)
    for outcome in candidates:
        outcome.refused = message
    return [], {}


def write_audit_publish(settings: Settings, name: str, contracts: list[Contract], keys: list[str | None],
                        stage: Callable[[str | None], Candidate], settle: Callable[[Candidate], object],
                        refusal: Refusal, run_id: str, log=None
                        ) -> tuple[list[Candidate], list[str | None], dict[str, list[CheckOutcome]]]:
    """Stage each partition key's data beside the stored partitions (``stage``), audit them all
    (`audit_run`), then publish or refuse each (``settle``), under the tables' write locks. Returns
    the candidates, the keys whose audit outcomes stand for what was published, and those outcomes.

    An error on the way leaves every stored partition as it was: nothing staged stays.
    """
    candidates: list[Candidate] = []
    with table_lock(settings, *(c.qualified_name for c in contracts)):
        try:
            for key in keys:
                candidates.append(stage(key))
            began = time.perf_counter()
            audited_keys, audited = audit_run(settings, contracts, candidates, run_id, refusal)
            if audited_keys and log is not None:
                log.info(f"{name}: blocking checks on {len(audited_keys)} staged partition(s) "
                         f"in {time.perf_counter() - began:.1f} s")
            for candidate in candidates:
                settle(candidate)
        finally:
            for candidate in candidates:         # an error before settling: nothing staged stays
                for pending in candidate.pending.values():
                    discard_partition(pending)
    return candidates, audited_keys, audited
