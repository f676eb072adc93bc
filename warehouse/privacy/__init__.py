"""Readers' rights: consent, erasure, retention and transparency, over the home folder's lake.

The meta tables written here (meta.consent, meta.erasure_ledger, meta.retention_log) are
append-only: one new Parquet file per change under ``lake/meta/<table>/<date>/``, like
meta.access_log, so nothing recorded is ever rewritten except to erase a reader. The consent
registry and the erasure ledger are also hash-chained (warehouse/audit.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from schemas.model import conform, contract_for
from warehouse.audit import CHAINED, append_chained
from warehouse.lake.files import write_parquet_atomic
from warehouse.lake.paths import log_file
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings


def utc_now() -> dt.datetime:
    """Now in UTC, naive, as the meta tables store it."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def pseudonymiser(settings: Settings) -> Pseudonymiser:
    return Pseudonymiser.load(settings.secrets_dir)


def append_rows(settings: Settings, table: str, rows: list[dict], when: dt.datetime) -> Path | None:
    """Append ``rows`` to an append-only meta table as one new file; None when there is nothing to add."""
    if not rows:
        return None
    contract = contract_for(table)
    frame = conform(pl.DataFrame(rows, schema=contract.polars_schema(), orient="row"), contract)
    path = log_file(settings, table, when)
    if table in CHAINED:
        return append_chained(settings, table, frame, path)
    write_parquet_atomic(frame, path)
    return path
