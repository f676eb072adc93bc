"""Staging assets: one per landing feed, each writing its staging tables partition by partition."""


import time
from collections import Counter

import dagster as dg
from dagster import AssetExecutionContext

from assets.admission import audit_run
from assets.feeds import FEEDS, Feed
from assets.ingest import INGEST_LOG, LOADED, DeliveryRefused, prepare_partition, settle_partition
from assets.metadata import asset_tags, definition_metadata
from assets.partitions import partitions_for
from assets.resources import ShukuWarehouse
from lineage.observe import observe
from quality.checks import check_specs, evaluate
from warehouse.contracts import contract_for
from warehouse.lake.locks import table_lock
from warehouse.lake.partitions import discard_partition
from warehouse.lake.views import refresh_warehouse_views
from warehouse.library import Library

# Materialisation metadata: landing files of which nothing was understood (alerted on).
UNRECOGNISED_FILES = "unrecognised_files"


def _staging_asset(feed: Feed, library: Library) -> dg.AssetsDefinition:
    partitions = partitions_for(feed.partitioning, library)
    specs, checks = [], []
    for table in feed.tables:
        contract = contract_for(f"staging.{table}")
        specs.append(dg.AssetSpec(
            key=["staging", table], description=contract.description, group_name=feed.source,
            metadata=definition_metadata(contract), tags=asset_tags(contract),
            owners=[f"team:{contract.owner}"] if contract.owner else None,
            kinds={"polars", "parquet", "duckdb"}, partitions_def=partitions))
        checks += check_specs(contract)

    @dg.multi_asset(name=f"ingest_{feed.name}", specs=specs, check_specs=checks or None, partitions_def=partitions,
                    backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
                    description=f"Load {feed.description}", pool=f"ingest_{feed.name}")
    def ingest(context: AssetExecutionContext, shuku: ShukuWarehouse):
        settings, library_now, pseudonymiser = shuku.settings(), shuku.library(), shuku.pseudonymiser()
        keys = context.partition_keys if partitions else [None]
        run_id = context.run.run_id
        outputs = [f"staging.{t}" for t in feed.tables]
        outcomes = []
        with observe(settings, job=f"ingest_{feed.name}", run_id=run_id, inputs=[], outputs=outputs,
                     partition_keys=[k for k in keys if k], source_path=feed.parser) as observation:
            # Write, audit, publish: every partition is written beside the stored one, the blocking
            # checks run on the new rows, and only then is it swapped in (assets/admission.py).
            with table_lock(settings, *outputs):
                earlier: dict[str, str] = {}
                try:
                    for key in keys:
                        outcome = prepare_partition(feed, key, settings, library_now, pseudonymiser, run_id,
                                                    context.log, earlier)
                        outcomes.append(outcome)
                        earlier.update((f.file_sha256, f.source_file) for f in outcome.files
                                       if f.file_status == LOADED)
                    began = time.perf_counter()
                    audited_keys, audited = audit_run(settings, feed, outcomes, run_id)
                    if audited_keys:
                        context.log.info(f"{feed.name}: blocking checks on {len(audited_keys)} staged partition(s) "
                                         f"in {time.perf_counter() - began:.1f} s")
                    for outcome in outcomes:
                        settle_partition(settings, feed, outcome, run_id)
                finally:
                    for outcome in outcomes:         # an error before settling: nothing staged stays
                        if outcome.staged is not None:
                            for pending in outcome.staged.pending.values():
                                discard_partition(pending)
            for outcome in outcomes:
                if outcome.written:
                    context.log.info(
                        f"{feed.name} {outcome.key or 'snapshot'}: {len(outcome.files)} file(s), "
                        f"loaded {sum(outcome.rows_loaded.values())}, "
                        f"quarantined {sum(outcome.quarantined_by_reason.values())}, duplicates {outcome.duplicates}")
                elif outcome.refused:
                    context.log.error(f"{feed.name} {outcome.key or 'snapshot'}: {outcome.refused}")
            published = [contract_for(name) for name in outputs] if any(o.written for o in outcomes) else []
            refresh_warehouse_views(settings, published
                                    + [contract_for(f"quarantine.{feed.source}"), contract_for(INGEST_LOG)]
                                    + [contract_for(f"meta.{t}") for t, _ in feed.meta_tables])
            files = [{"file": f.source_file, "sha256": f.file_sha256, "bytes": f.file_bytes,
                      "rows_read": sum(f.rows_read.values())} for o in outcomes for f in o.files]
            observation.add_landing_files(files)
            refused = list(dict.fromkeys(o.refused for o in outcomes if o.refused))
            if refused:
                # The step fails (the asset shows a failed materialisation, not a green one with
                # 0 rows); the partitions this run published are kept, their checks run next time.
                raise DeliveryRefused(" ".join(refused))
            checked = {}
            # The blocking checks' outcomes on the staged rows stand for the published ones when
            # the run published exactly what was audited (a day without files is checked in full).
            reuse = sorted(audited_keys, key=str) == sorted(keys, key=str)
            for table in feed.tables:
                observation.add_output(f"staging.{table}", rows=sum(o.rows_loaded.get(table, 0) for o in outcomes),
                                       bytes=sum(o.bytes_written.get(table, 0) for o in outcomes),
                                       files=sum(1 for o in outcomes if o.written))
                checked[table] = list(evaluate(contract_for(f"staging.{table}"), settings, run_id=run_id,
                                               partition_keys=[k for k in keys if k] or None,
                                               audited=audited.get(table) if reuse else None))
                observation.add_check_results(f"staging.{table}", checked[table])
        reasons = Counter()
        for outcome in outcomes:
            reasons.update(outcome.quarantined_by_reason)
        missing = [o.key for o in outcomes if not o.written and not o.unrecognised_files]
        unrecognised = [f for o in outcomes for f in o.unrecognised_files]
        for table in feed.tables:
            yield dg.MaterializeResult(asset_key=["staging", table], metadata={
                "dagster/row_count": sum(o.rows_loaded.get(table, 0) for o in outcomes),
                "files": len(files),
                "partitions_written": sum(1 for o in outcomes if o.written),
                "partitions_without_files": dg.MetadataValue.json(missing[:50]),
                UNRECOGNISED_FILES: dg.MetadataValue.json(unrecognised[:200]),
                "quarantined": sum(reasons.values()),
                "quarantined_by_reason": dg.MetadataValue.json(dict(sorted(reasons.items()))),
                "duplicates_removed": sum(o.duplicates for o in outcomes),
                "landing_files": dg.MetadataValue.json(files[:200]),
                "duplicate_files": dg.MetadataValue.json([d for o in outcomes for d in o.duplicate_files][:200]),
                **{f"meta.{t}": sum(o.meta_rows.get(t, 0) for o in outcomes) for t, _ in feed.meta_tables},
            })
        for results in checked.values():
            yield from results

    return ingest


def build_staging_assets(library: Library) -> list[dg.AssetsDefinition]:
    return [_staging_asset(feed, library) for feed in FEEDS]


