"""Privacy assets: the consent registry loaded from the patron export, the retention sweep, and
what erasure needs from this layer (landing formats, recomputing the SQL models)."""


from pathlib import Path
from typing import Callable

import dagster as dg

from assets.circulation.folio_json import beside
from assets.circulation.folio_users import USERS_FILES, UserCards
from assets.feeds import FEEDS, Feed
from assets.models.incremental import build_model
from assets.models.sql_model import discover_models
from assets.table_asset import TableRun, Written, table_asset
from schemas.model import contract_for
from warehouse.lake.views import refresh_warehouse_views
from warehouse.library import Library
from warehouse.privacy.consent import CONSENT_TABLE, sync_from_patron_export
from warehouse.privacy.erasure import ErasureHooks, LandingRewriter
from warehouse.privacy.retention import RETENTION_LOG, sweep
from warehouse.settings import Settings

CONSENT_KEY = dg.AssetKey(["meta", "consent"])
SWEEP_KEY = dg.AssetKey(["meta", "retention_sweep"])


# --- erasure: which landing files hold readers, and how to drop a reader's lines ---------------

def reader_feeds() -> list[Feed]:
    """Feeds whose staging tables hold a reader (a ``patron_pid`` column)."""
    return [f for f in FEEDS if any("patron_pid" in contract_for(f"staging.{t}").column_names for t in f.tables)]


def reader_landing_files(settings: Settings) -> list[Path]:
    """The landing files that may name a reader; FOLIO users exports last, since a loan that names
    only its reader's UUID is found through the export beside it, which must still hold the reader."""
    files = sorted({p for feed in reader_feeds() for p in feed.files(settings.landing)})
    exports = sorted({e for p in files if p.name.startswith("folio_") and (e := beside(p, *USERS_FILES))})
    return files + [e for e in exports if e not in files]


def landing_rewriter(library: Library) -> LandingRewriter:
    """The erasure's landing step: a file's bytes without the reader's lines, found where its
    format's parser declares the card (``CARDS``); the bytes of other lines are kept as they were."""

    def rewrite(path: Path, data: bytes, is_card: Callable[[str], bool]) -> tuple[bytes, int]:
        if path.name in USERS_FILES:
            return UserCards().without_reader(path, data, is_card, library)
        fmt = next((f.format_of(path) for f in FEEDS if f.format_of(path)), None)
        if fmt is None or fmt.cards is None:
            return data, 0
        return fmt.cards.without_reader(path, data, is_card, library)

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
