"""Staging assets: one per landing feed, each writing its staging tables partition by partition."""


from collections import Counter

import dagster as dg
from dagster import AssetExecutionContext

from assets.feeds import FEEDS, Feed
from assets.ingest import ingest_partition
from assets.metadata import asset_tags, definition_metadata
from assets.partitions import partitions_for
from assets.resources import ShukuWarehouse
from warehouse.contracts import contract_for
from warehouse.library import Library
from warehouse.storage import refresh_warehouse_views


def _staging_asset(feed: Feed, library: Library) -> dg.AssetsDefinition:
    partitions = partitions_for(feed.partitioning, library)
    specs = []
    for table in feed.tables:
        contract = contract_for(f"staging.{table}")
        specs.append(dg.AssetSpec(
            key=["staging", table], description=contract.description, group_name=feed.source,
            metadata=definition_metadata(contract), tags=asset_tags(contract),
            owners=[f"team:{contract.owner}"] if contract.owner else None,
            kinds={"polars", "parquet", "duckdb"}, partitions_def=partitions))

    @dg.multi_asset(name=f"ingest_{feed.name}", specs=specs, partitions_def=partitions,
                    backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
                    description=f"Load {feed.description}", pool=f"ingest_{feed.name}")
    def ingest(context: AssetExecutionContext, shuku: ShukuWarehouse):
        settings, library_now, pseudonymiser = shuku.settings(), shuku.library(), shuku.pseudonymiser()
        keys = context.partition_keys if partitions else [None]
        outcomes = []
        for key in keys:
            outcome = ingest_partition(feed, key, settings, library_now, pseudonymiser, context.run.run_id, context.log)
            outcomes.append(outcome)
            if outcome.written:
                context.log.info(
                    f"{feed.name} {key or 'snapshot'}: {len(outcome.files)} file(s), "
                    f"loaded {sum(outcome.rows_loaded.values())}, quarantined {sum(outcome.quarantined_by_reason.values())}, "
                    f"duplicates {outcome.duplicates}")
        refresh_warehouse_views(settings, [contract_for(f"staging.{t}") for t in feed.tables]
                                + [contract_for(f"quarantine.{feed.source}"), contract_for("meta.ingest_log")])
        reasons = Counter()
        for outcome in outcomes:
            reasons.update(outcome.quarantined_by_reason)
        files = [{"file": f.source_file, "sha256": f.file_sha256, "bytes": f.file_bytes}
                 for o in outcomes for f in o.files]
        missing = [o.key for o in outcomes if not o.written]
        for table in feed.tables:
            yield dg.MaterializeResult(asset_key=["staging", table], metadata={
                "dagster/row_count": sum(o.rows_loaded.get(table, 0) for o in outcomes),
                "files": len(files),
                "partitions_written": sum(1 for o in outcomes if o.written),
                "partitions_without_files": dg.MetadataValue.json(missing[:50]),
                "quarantined": sum(reasons.values()),
                "quarantined_by_reason": dg.MetadataValue.json(dict(sorted(reasons.items()))),
                "duplicates_removed": sum(o.duplicates for o in outcomes),
                "landing_files": dg.MetadataValue.json(files[:200]),
            })

    return ingest


def build_staging_assets(library: Library) -> list[dg.AssetsDefinition]:
    return [_staging_asset(feed, library) for feed in FEEDS]


