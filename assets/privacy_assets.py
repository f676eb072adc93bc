"""Privacy assets: the consent registry loaded from the patron export, the retention sweep, and
what erasure needs from this layer (landing formats, recomputing the SQL models)."""


import csv
import json
import re
from pathlib import Path
from typing import Callable

import dagster as dg

from assets.eresources.ezproxy import _log_format_of, compile_log_format
from assets.feeds import FEEDS, Feed
from assets.models.incremental import build_model
from assets.models.sql_model import discover_models
from assets.table_asset import TableRun, Written, table_asset
from warehouse.contracts import contract_for
from warehouse.lake.views import refresh_warehouse_views
from warehouse.library import Library
from warehouse.privacy.consent import CONSENT_TABLE, sync_from_patron_export
from warehouse.privacy.erasure import ErasureHooks
from warehouse.privacy.retention import RETENTION_LOG, sweep
from warehouse.settings import Settings
from warehouse.textio import decode

CONSENT_KEY = dg.AssetKey(["meta", "consent"])
SWEEP_KEY = dg.AssetKey(["meta", "retention_sweep"])
RETENTION_JOB = "retention_sweep"
# Header names under which the landing CSVs carry the reader's card (Koha, OPAC, turnstile, ILS export).
CARD_COLUMNS = ("cardnumber", "card", "card_number", "borrowernumber")
DELIMITERS = ",;\t|"


# --- erasure: which landing files hold readers, and how to drop a reader's lines ---------------

def reader_feeds() -> list[Feed]:
    """Feeds whose staging tables hold a reader (a ``patron_pid`` column)."""
    return [f for f in FEEDS if any("patron_pid" in contract_for(f"staging.{t}").column_names for t in f.tables)]


def reader_landing_files(settings: Settings) -> list[Path]:
    return sorted({p for feed in reader_feeds() for p in feed.files(settings.landing)})


def _csv_cards(lines: list[str], card_pattern: re.Pattern[str]) -> list[str | list[str] | None]:
    """Per line, the card field (parsed by the header's card column), or every card token of a line that does not parse."""
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        return [None] * len(lines)
    header_line = lines[header_at].lstrip("\ufeff").rstrip("\r\n")
    delimiter = max(DELIMITERS, key=header_line.count)
    header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter))]
    column = next((header.index(c) for c in CARD_COLUMNS if c in header), None)
    cards: list[str | list[str] | None] = []
    for i, line in enumerate(lines):
        text = line.rstrip("\r\n")
        if column is not None and i == header_at:
            cards.append(None)
            continue
        fields = next(csv.reader([text], delimiter=delimiter), []) if column is not None else []
        if column is not None and len(fields) == len(header):
            cards.append(fields[column])
        else:   # headerless or malformed: a card of this reader anywhere in the line makes it theirs
            cards.append(card_pattern.findall(text))
    return cards


def _ezproxy_cards(path: Path, library: Library, lines: list[str]) -> list[str | list[str] | None]:
    pattern = re.compile(compile_log_format(_log_format_of(path, library)[0]))
    cards: list[str | list[str] | None] = []
    for line in lines:
        match = pattern.match(line.rstrip("\r\n"))
        if match and "user" in pattern.groupindex:
            cards.append(match.group("user"))
        else:
            cards.append(library.card_regex().findall(line))
    return cards


def _folio_card(loan) -> str | None:
    if not isinstance(loan, dict):
        return None
    borrower = loan.get("borrower") if isinstance(loan.get("borrower"), dict) else {}
    return str(borrower.get("barcode") or loan.get("userId") or "") or None


def landing_rewriter(library: Library) -> Callable[[Path, bytes, Callable[[str], bool]], tuple[bytes, int]]:
    """The erasure's landing step: a file's bytes without the reader's lines (bytes of other lines kept as they were)."""
    card_pattern = library.card_regex()

    def rewrite(path: Path, data: bytes, is_card: Callable[[str], bool]) -> tuple[bytes, int]:
        feed = next((f for f in FEEDS if f.format_of(path)), None)
        if feed is None:
            return data, 0
        text, encoding = decode(data, path)
        parser = feed.format_of(path).parser
        raw_lines = data.splitlines(keepends=True)
        lines = [line.decode(encoding, errors="replace") for line in raw_lines]
        if parser.startswith("assets.circulation.folio"):
            first = next((line for line in lines if line.strip()), "")
            try:
                single = json.loads(first)
            except json.JSONDecodeError:
                single = None
            if not (isinstance(single, dict) and "loans" not in single):
                doc = json.loads(text)
                loans = doc if isinstance(doc, list) else doc.get("loans", [])
                kept = [loan for loan in loans if not is_card(_folio_card(loan))]
                if len(kept) == len(loans):
                    return data, 0
                if isinstance(doc, list):
                    doc = kept
                else:
                    doc["loans"] = kept
                    if "totalRecords" in doc:
                        doc["totalRecords"] = len(kept)
                return json.dumps(doc, ensure_ascii=False, indent=2).encode(encoding), len(loans) - len(kept)
            cards = []
            for line in lines:
                try:
                    cards.append(_folio_card(json.loads(line)))
                except json.JSONDecodeError:
                    cards.append(card_pattern.findall(line))
        elif parser.startswith("assets.eresources.ezproxy"):
            cards = _ezproxy_cards(path, library, lines)
        else:
            cards = _csv_cards(lines, card_pattern)
        drop = [any(is_card(c) for c in card) if isinstance(card, list) else is_card(card) for card in cards]
        if not any(drop):
            return data, 0
        return b"".join(raw for raw, gone in zip(raw_lines, drop) if not gone), sum(drop)

    return rewrite


def _ordered_models():
    """The SQL models, each after the models it reads."""
    models = {m.qualified_name: m for m in discover_models()}
    ordered, seen = [], set()

    def visit(name: str) -> None:
        if name in seen or name not in models:
            return
        seen.add(name)
        for upstream in models[name].upstream():
            visit(upstream)
        ordered.append(models[name])

    for name in models:
        visit(name)
    return ordered


def rebuild_models(settings: Settings, changed: set[str]) -> list[str]:
    """Recompute, from their SQL files, the models downstream of ``changed`` tables; returns them in order."""
    affected, rebuilt = set(changed), []
    for model in _ordered_models():
        if not affected & set(model.upstream()):
            continue
        build_model(settings, model, force=True)
        affected.add(model.qualified_name)
        rebuilt.append(model.qualified_name)
    if rebuilt:
        refresh_warehouse_views(settings, [contract_for(name) for name in rebuilt])
    return rebuilt


def erasure_hooks(library: Library) -> ErasureHooks:
    return ErasureHooks(landing_files=reader_landing_files, rewrite_landing=landing_rewriter(library),
                        rebuild_models=rebuild_models)


# --- assets ------------------------------------------------------------------------------------

def _record_consent(run: TableRun) -> Written:
    """Record the consent changes the loaded patron export brings (append-only)."""
    recorded = sync_from_patron_export(run.settings)
    run.context.log.info(f"{recorded} consent change(s) recorded from the patron export")
    return Written(rows=recorded, bytes=0, files=1 if recorded else 0, metadata={"changes_recorded": recorded})


def _sweep(run: TableRun) -> Written:
    outcome = sweep(run.settings, FEEDS)     # refreshes the views of what it changed
    run.context.log.info(outcome.summary())
    return Written(rows=len(outcome.rows), bytes=0, files=1, published=False,
                   metadata={"landing_files_deleted": outcome.files_deleted, "rows_delinked": outcome.rows_delinked,
                             "cutoffs": dg.MetadataValue.json(outcome.cutoffs)})


consent_registry = table_asset([CONSENT_TABLE], _record_consent, group="privacy", kinds={"parquet", "duckdb"},
                               inputs=["staging.patron"], source_path=__file__)
retention_sweep = table_asset(
    [RETENTION_LOG], _sweep, key=SWEEP_KEY.path, group="privacy", kinds={"parquet"}, source_path=__file__,
    description="Enforce each contract's retention: delete landing files past it, de-link reader ids "
                "from older staging and core rows (the rows kept), log it in meta.retention_log.")
privacy_assets = [consent_registry, retention_sweep]
retention_job = dg.define_asset_job(RETENTION_JOB, selection=dg.AssetSelection.assets(SWEEP_KEY),
                                    description="Enforce retention: landing files and reader ids past their contract's retention.")


def retention_schedule(timezone: str) -> dg.ScheduleDefinition:
    """The daily sweep at 03:30 in the library's time zone, after the nightly ingest."""
    return dg.ScheduleDefinition(name="daily_retention_sweep", job=retention_job, cron_schedule="30 3 * * *",
                                 execution_timezone=timezone,
                                 description="Every day at 03:30 library time, after the nightly ingest.")
