"""Staging assets: one per landing feed, each writing its staging tables partition by partition.

Write, audit, publish: every partition is written beside the stored one, the blocking checks
run on the new rows, and only then is it swapped in (`assets.admission.write_audit_publish`).
"""

from collections import Counter

import dagster as dg

from assets.admission import refusal_message, write_audit_publish
from assets.feeds import FEEDS, Feed
from assets.ingest import DeliveryRefused, PartitionOutcome, prepare_partition, settle_partition
from assets.ingest_log import INGEST_LOG, LOADED
from assets.partitions import partitions_for
from assets.progress import INGEST_STEP, partition_line
from assets.refusal import refusal_metadata
from assets.table_asset import Build, TableRun, Written, table_asset
from schemas.model import contract_for
from warehouse.library import Library

# Materialisation metadata: landing files of which nothing was understood (alerted on).
UNRECOGNISED_FILES = "unrecognised_files"
EMPTY_FILES = "empty_files"


def _load(feed: Feed, run: TableRun) -> Build:
    """Stage, audit and publish each partition of the run, then say what was loaded."""
    pseudonymiser = run.shuku.pseudonymiser()
    keys = run.partition_keys or [None]
    earlier: dict[str, str] = {}

    def stage(key: str | None) -> PartitionOutcome:
        outcome = prepare_partition(feed, key, run.settings, run.library, pseudonymiser, run.run_id,
                                    run.context.log, earlier)
        earlier.update((f.file_sha256, f.source_file) for f in outcome.files if f.file_status == LOADED)
        run.context.log.info(partition_line(f"{INGEST_STEP}{feed.name}", key, sum(outcome.rows_loaded.values()),
                                            sum(outcome.quarantined_by_reason.values())))
        return outcome

    outcomes, audited_keys, audited = write_audit_publish(
        run.settings, feed.name, [contract_for(f"staging.{t}") for t in feed.tables], keys, stage,
        lambda outcome: settle_partition(run.settings, feed, outcome, run.run_id),
        lambda refused, reasons: refusal_message(feed, refused, reasons), run.run_id, run.context.log)
    for outcome in outcomes:
        if outcome.written:
            run.context.log.info(
                f"{feed.name} {outcome.key or 'snapshot'}: {len(outcome.files)} file(s), "
                f"loaded {sum(outcome.rows_loaded.values())}, "
                f"quarantined {sum(outcome.quarantined_by_reason.values())}, duplicates {outcome.duplicates}")
        elif outcome.refused:
            run.context.log.error(f"{feed.name} {outcome.key or 'snapshot'}: {outcome.refused}")
    files = [{"file": f.source_file, "sha256": f.file_sha256, "bytes": f.file_bytes,
              "rows_read": sum(f.rows_read.values())} for o in outcomes for f in o.files]
    run.observation.add_landing_files(files)
    refused = list(dict.fromkeys(o.refused for o in outcomes if o.refused))
    # The blocking checks' outcomes on the staged rows stand for the published ones when the run
    # published exactly what was audited (a day without files is checked in full).
    reuse = sorted(audited_keys, key=str) == sorted(keys, key=str)
    reasons = Counter()
    for outcome in outcomes:
        reasons.update(outcome.quarantined_by_reason)
    missing = [o.key for o in outcomes if not o.written and not o.unrecognised_files and not o.empty_files]
    unrecognised = [f for o in outcomes for f in o.unrecognised_files]
    written = any(o.written for o in outcomes)
    tables = {}
    for table in feed.tables:
        name = f"staging.{table}"
        tables[name] = Written(
            rows=sum(o.rows_loaded.get(table, 0) for o in outcomes),
            bytes=sum(o.bytes_written.get(table, 0) for o in outcomes),
            files=sum(1 for o in outcomes if o.written), checked=run.partition_keys or None,
            audited=audited.get(name) if reuse else None, published=written, metadata={
                "files": len(files),
                "partitions_written": sum(1 for o in outcomes if o.written),
                "partitions_without_files": dg.MetadataValue.json(missing[:50]),
                UNRECOGNISED_FILES: dg.MetadataValue.json(unrecognised[:200]),
                EMPTY_FILES: dg.MetadataValue.json([f for o in outcomes for f in o.empty_files][:200]),
                "quarantined": sum(reasons.values()),
                "quarantined_by_reason": dg.MetadataValue.json(dict(sorted(reasons.items()))),
                "duplicates_removed": sum(o.duplicates for o in outcomes),
                "landing_files": dg.MetadataValue.json(files[:200]),
                "duplicate_files": dg.MetadataValue.json([d for o in outcomes for d in o.duplicate_files][:200]),
                **{f"meta.{t}": sum(o.meta_rows.get(t, 0) for o in outcomes) for t, _ in feed.meta_tables}})
    # A refused delivery fails the step (the asset shows a failed materialisation, not a green one
    # with 0 rows); the partitions this run published are kept, their checks run next time.
    return Build(tables, views=[f"quarantine.{feed.source}", INGEST_LOG, *(f"meta.{t}" for t, _ in feed.meta_tables)],
                 failure=DeliveryRefused(" ".join(refused), metadata=refusal_metadata(
                     [r for o in outcomes for r in o.refused_files])) if refused else None)


def _staging_asset(feed: Feed, library: Library) -> dg.AssetsDefinition:
    return table_asset([f"staging.{t}" for t in feed.tables], lambda run: _load(feed, run),
                       name=f"{INGEST_STEP}{feed.name}", group=feed.source, kinds={"polars", "parquet", "duckdb"},
                       description=f"Load {feed.description}", source_path=feed.parser,
                       deps=[feed.harvested_by] if feed.harvested_by else None,
                       partitions_def=partitions_for(feed.partitioning, library), pool=f"ingest_{feed.name}")


def build_staging_assets(library: Library) -> list[dg.AssetsDefinition]:
    return [_staging_asset(feed, library) for feed in FEEDS]
