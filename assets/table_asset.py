"""One way to make a table asset: every staging, core, mart, reference and privacy asset is made
by `table_asset` from the contracts of the tables it writes and a build function.

The build writes its tables and says what it wrote (`Written`); the factory does the rest,
the same way for all of them:
  definition  a Dagster spec per table from its contract (description, column schema, tags,
              owners) and its checks, error-severity ones blocking what is downstream
  lineage     the execution observed (OpenLineage START, then COMPLETE or FAIL) with what it
              read and wrote, and every check's outcome as an assertion
  views       the views of warehouse.duckdb refreshed over what the build published
  checks      the table's checks on what the run wrote; the outcomes of an audit of exactly
              the partitions published (write, audit, publish: `assets.admission`) are reused
  metadata    the materialisation's row count and what the build reports
A build that stages partitions beside the stored ones has them audited before they replace
the old ones (`assets.admission.write_audit_publish`, the staging tables); the models and
marts are checked once written, their blocking checks holding back what reads them.
"""


from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Sequence

import dagster as dg
from dagster import AssetExecutionContext

from assets.metadata import asset_tags, definition_metadata
from assets.resources import ShukuWarehouse
from lineage.observe import Observation, observe
from quality.checks import check_specs, evaluate
from quality.plan import planned_checks
from quality.results import CheckOutcome
from quality.rules import rules_for
from quality.suites import contract_expectations
from schemas.model import Contract, contract_for
from warehouse.lake.views import refresh_warehouse_views
from warehouse.library import Library
from warehouse.settings import Settings


@dataclass
class Written:
    """What a build did to one table."""

    rows: int                                  # rows this run wrote
    bytes: int | None = None
    files: int | None = None
    checked: list[str] | None = None           # the partition keys its checks run on (None: the whole table)
    audited: list[CheckOutcome] | None = None  # the audit's outcomes on exactly those, not computed again
    published: bool = True                     # something of it changed: its view is refreshed
    metadata: dict = field(default_factory=dict)


@dataclass
class Build:
    """What a build did: its tables, the others it wrote beside them, and why it failed."""

    tables: dict[str, Written]                 # layer.table → what was written to it
    views: list[str] = field(default_factory=list)   # other tables written (a quarantine, a log): views refreshed
    failure: Exception | None = None           # raised once the views are refreshed; what was published stays


@dataclass
class TableRun:
    """One execution of a table asset, as its build sees it."""

    context: AssetExecutionContext
    shuku: ShukuWarehouse
    settings: Settings
    partition_keys: list[str]                  # the run's partitions ([] for an unpartitioned asset)
    observation: Observation | None = None

    @property
    def run_id(self) -> str:
        return self.context.run.run_id

    @cached_property
    def library(self) -> Library:
        return self.shuku.library()


def lineage_assertions(contract: Contract, results: Sequence[dg.AssetCheckResult]) -> list[dict]:
    """The checks run on a table as OpenLineage data-quality assertions: what kind of test (the
    contract rule's kind, custom_sql for a hand-written rule, else the check's own name)."""
    rules = {rule.name: rule for rule in contract_expectations(contract)}
    sql_rules = {rule.name for rule in rules_for(contract)}
    described = {check.name: check.description for check in planned_checks(contract)}
    assertions = []
    for result in results:
        name = result.check_name
        rule = rules.get(name)
        observed, partitions = result.metadata.get("observed"), result.metadata.get("partitions")
        assertions.append({
            "assertion": rule.kind if rule else "custom_sql" if name in sql_rules else name, "name": name,
            "success": bool(result.passed), "column": rule.column if rule else None,
            "severity": result.severity.value.lower(), "description": described.get(name),
            "actual": str(observed.value) if observed is not None else None,
            "params": {"columns": list(rule.columns) if rule else [],
                       "partitions": partitions.value if partitions is not None else "all"}})
    return assertions


def _spec(contract: Contract, key: dg.AssetKey, description: str, group: str, kinds: set[str], deps: list[str],
          metadata: dict, partitions_def) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=key, description=description, group_name=group, deps=[dg.AssetKey(name.split(".")) for name in deps],
        metadata={**definition_metadata(contract), **metadata}, tags=asset_tags(contract),
        owners=[f"team:{contract.owner}"] if contract.owner else None, kinds=kinds, partitions_def=partitions_def)


def table_asset(tables: Sequence[str], build: Callable[[TableRun], Build | Written], *, group: str,
                kinds: set[str], name: str | None = None, key: Sequence[str] | None = None,
                description: str | None = None, inputs: Sequence[str] = (), deps: Sequence[str] | None = None,
                sql: str | Callable[[Library], str] | None = None,
                source_path: str | Callable[[Library], str] | None = None, metadata: dict | None = None,
                partitions_def: dg.PartitionsDefinition | None = None, pool: str | None = None) -> dg.AssetsDefinition:
    """The asset writing ``tables`` (``layer.table``) with ``build``.

    Each table is the asset ``layer/table``, described by its contract; one table written by an
    action that is not the table itself (a sweep) is the asset ``key``, described by ``description``.
    ``name`` is the step and the lineage job (default the asset key with ``__`` and with dots);
    ``description`` also describes the step. ``inputs``: the tables it reads, for lineage;
    ``deps``: those it waits for (default ``inputs``). ``sql`` and ``source_path`` (or functions of
    the library config giving them) go to lineage.
    """
    contracts = [contract_for(table) for table in tables]
    if key is not None and len(contracts) > 1:
        raise ValueError(f"{name}: an asset key names one table's asset; {len(contracts)} tables were given")
    keys = {c.qualified_name: dg.AssetKey(list(key) if key is not None else [c.layer, c.table]) for c in contracts}
    first = keys[contracts[0].qualified_name].path
    job, name = name or ".".join(first), name or "__".join(first)
    specs = [_spec(c, keys[c.qualified_name], description if key is not None else c.description,
                   group, kinds, list(inputs if deps is None else deps), metadata or {}, partitions_def)
             for c in contracts]
    checks = [spec for c in contracts for spec in check_specs(c)]

    @dg.multi_asset(name=name, specs=specs, check_specs=checks or None, partitions_def=partitions_def,
                    backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
                    description=description or contracts[0].description, pool=pool)
    def table_asset_body(context: AssetExecutionContext, shuku: ShukuWarehouse):
        settings = shuku.settings()
        run = TableRun(context, shuku, settings, context.partition_keys if partitions_def else [])
        with observe(settings, job=job, run_id=run.run_id, inputs=list(inputs), outputs=list(tables),
                     partition_keys=run.partition_keys, sql=sql(run.library) if callable(sql) else sql,
                     source_path=source_path(run.library) if callable(source_path) else source_path) as observation:
            run.observation = observation
            built = build(run)
            if isinstance(built, Written):
                built = Build({tables[0]: built})
            changed = [t for t, w in built.tables.items() if w.published] + built.views
            if changed:
                refresh_warehouse_views(settings, [contract_for(t) for t in changed])
            if built.failure is not None:
                if isinstance(built.failure, dg.Failure):
                    # The asset page's events say why it was not updated, as the run page does.
                    for table in built.tables:
                        context.log_event(dg.AssetObservation(asset_key=keys[table], description=built.failure.description,
                                                              metadata=built.failure.metadata))
                raise built.failure
            results = {}
            for table, written in built.tables.items():
                contract = contract_for(table)
                observation.add_output(table, rows=written.rows, bytes=written.bytes, files=written.files)
                results[table] = list(evaluate(contract, settings, run_id=run.run_id,
                                               partition_keys=written.checked, audited=written.audited))
                observation.add_assertions(table, lineage_assertions(contract, results[table]))
        for table, written in built.tables.items():
            yield dg.MaterializeResult(asset_key=keys[table],
                                       metadata={"dagster/row_count": written.rows, **written.metadata})
        for checked in results.values():
            yield from checked

    return table_asset_body
