"""Every table the pipeline writes, from the code that writes it: the list contracts are checked against."""

from assets.feeds import FEEDS
from assets.ingest_log import INGEST_LOG
from assets.marts_python import TABLES as PYTHON_MARTS
from assets.models.sql_model import discover_models
from assets.reference import BUILDERS
from lineage.store import TABLES as LINEAGE_TABLES
from quality.results import RESULTS_TABLE
from warehouse.guarded import ACCESS_LOG
from warehouse.lake.paths import CHECKSUMS_TABLE
from warehouse.privacy.consent import CONSENT_TABLE
from warehouse.privacy.erasure import LEDGER_TABLE
from warehouse.privacy.retention import RETENTION_LOG


def pipeline_tables() -> set[str]:
    """``layer.table`` of every staging, quarantine, core, marts and meta table Shuku writes."""
    tables = {f"staging.{t}" for feed in FEEDS for t in feed.tables}
    tables |= {f"quarantine.{feed.source}" for feed in FEEDS}
    tables |= {f"meta.{t}" for feed in FEEDS for t, _ in feed.meta_tables}
    tables |= {feed.harvested_by for feed in FEEDS if feed.harvested_by}
    tables |= {m.qualified_name for m in discover_models()}
    tables |= {f"core.{t}" for t in BUILDERS}
    tables |= set(PYTHON_MARTS)
    return tables | {INGEST_LOG, RESULTS_TABLE, ACCESS_LOG, *LINEAGE_TABLES, CONSENT_TABLE, LEDGER_TABLE, RETENTION_LOG,
                     CHECKSUMS_TABLE}
