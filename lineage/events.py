"""OpenLineage RunEvents for one observed asset execution (client `event_v2`/`facet_v2`).

Jobs live in the namespace ``shuku``; tables are datasets named by the OpenLineage
conventions for DuckDB (``duckdb://<warehouse.duckdb>``, ``layer.table``); landing files
are datasets of ``file://<landing folder>`` named by their path under it, versioned by
their SHA-256. Facets derived from contracts and SQL are built once per process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import traceback
import uuid
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState, set_producer
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    dataset_version_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
    source_code_location_job,
    sql_job,
    tags_dataset,
)

from lineage.columns import Edge
from lineage.prefetch import model_lineage, prefetch_sql_lineage
from lineage.mappings import REFERENCE, declared_edges
from schemas.model import ContractError, contract_for
from warehouse.settings import REPO_ROOT, Settings

NAMESPACE = "shuku"
PARENT_JOB = "dagster"
PRODUCER = "urn:shuku:lineage"
# Fixed, so the same Dagster run and job always give the same OpenLineage run id.
RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:shuku:openlineage-run")


def run_uuid(dagster_run_id: str, job: str) -> str:
    """The OpenLineage run id of one job within a Dagster run (uuid5, deterministic)."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{dagster_run_id}/{job}"))


def parent_run_uuid(dagster_run_id: str) -> str:
    """The Dagster run id itself when it is a UUID, else a uuid5 of it."""
    try:
        return str(uuid.UUID(dagster_run_id))
    except ValueError:
        return str(uuid.uuid5(RUN_ID_NAMESPACE, dagster_run_id))


def table_namespace(settings: Settings) -> str:
    return f"duckdb://{settings.warehouse_db}"


def landing_namespace(settings: Settings) -> str:
    return f"file://{settings.landing}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@lru_cache(maxsize=1)
def _versions() -> tuple[str, str]:
    return version("dagster"), version("openlineage-python")


def _contract(table: str):
    try:
        return contract_for(table)
    except ContractError:
        return None


@lru_cache(maxsize=128)
def contract_facets(table: str) -> dict:
    """Schema, documentation, ownership and per-column tags of a table, from its contract."""
    contract = _contract(table)
    if contract is None:
        return {}
    facets = {
        "schema": schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.physical_type, description=c.description or None,
                                                    ordinal_position=i)
            for i, c in enumerate(contract.columns, 1)]),
        "tags": tags_dataset.TagsDatasetFacet(tags=[
            tags_dataset.TagsDatasetFacetFields(key=key, value=value, source="CONTRACT", field=c.name)
            for c in contract.columns for key, value in (("classification", c.classification), ("pii", c.pii))]),
    }
    if contract.description:
        facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(
            description=contract.description, contentType="text/plain")
    if contract.owner:
        facets["ownership"] = ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=f"team:{contract.owner}", type="OWNER")])
    return facets


def _source_location(source_path: str | None) -> tuple[str, str] | None:
    """(url, path relative to the repository) of a file, or of a ``module:function``."""
    if not source_path:
        return None
    path = Path(source_path)
    if ":" in source_path and not path.exists():
        path = REPO_ROOT.joinpath(*source_path.split(":")[0].split(".")).with_suffix(".py")
    path = path.resolve()
    try:
        relative = path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        relative = path.as_posix()
    return path.as_uri(), relative


@lru_cache(maxsize=256)
def job_facets(job: str, outputs: tuple[str, ...], sql: str | None, source_path: str | None) -> dict:
    """Job type, SQL, source location and documentation of a job."""
    facets: dict = {"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="SHUKU", jobType="ASSET")}
    if sql:
        facets["sql"] = sql_job.SQLJobFacet(query=sql, dialect="duckdb")
    location = _source_location(source_path)
    if location:
        facets["sourceCodeLocation"] = source_code_location_job.SourceCodeLocationJobFacet(
            type="file", url=location[0], path=location[1])
    descriptions = [c.description for c in map(_contract, outputs) if c is not None and c.description]
    if descriptions:
        facets["documentation"] = documentation_job.DocumentationJobFacet(
            description="\n".join(dict.fromkeys(descriptions)), contentType="text/plain")
    return facets


def _transformation(edge: Edge) -> column_lineage_dataset.Transformation:
    return column_lineage_dataset.Transformation(type=edge.type, subtype=edge.subtype,
                                                 description=edge.description or None, masking=edge.masking)


def _input_fields(edges: list[Edge], datasets: dict[str, list[tuple[str, str]]]) -> list:
    """InputFields grouped by input column; ``datasets`` maps an edge's input to (namespace, name)s."""
    grouped: dict[tuple[str, str, str], list] = {}
    for edge in edges:
        for namespace, name in datasets.get(edge.input_table, ()):
            grouped.setdefault((namespace, name, edge.input_column), []).append(_transformation(edge))
    return [column_lineage_dataset.InputField(namespace=ns, name=name, field=field, transformations=transformations)
            for (ns, name, field), transformations in grouped.items()]


def column_edges(table: str, sql: str | None) -> list[Edge]:
    """Every column edge of an output table: sqlglot lineage for SQL, else the declared mapping."""
    if sql:
        return model_lineage(sql).edges()
    return list(declared_edges(table))


def column_lineage_facet(table: str, sql: str | None, datasets: dict[str, list[tuple[str, str]]]):
    edges = column_edges(table, sql)
    if not edges:
        return None
    by_column: dict[str, list[Edge]] = {}
    for edge in edges:
        if edge.output_column is not None:
            by_column.setdefault(edge.output_column, []).append(edge)
    fields = {column: column_lineage_dataset.Fields(inputFields=_input_fields(col_edges, datasets))
              for column, col_edges in by_column.items()}
    fields = {c: f for c, f in fields.items() if f.inputFields}
    dataset = _input_fields([e for e in edges if e.output_column is None], datasets)
    if not fields and not dataset:
        return None
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, dataset=dataset)


def _nominal_time(partition_keys: list[str]):
    if not partition_keys:
        return None
    keys = sorted(partition_keys)

    def bounds(key: str) -> tuple[dt.date, dt.date]:
        if len(key) == 7:   # a month, YYYY-MM
            first = dt.date.fromisoformat(f"{key}-01")
            return first, (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        day = dt.date.fromisoformat(key)
        return day, day + dt.timedelta(days=1)

    start, end = bounds(keys[0])[0], bounds(keys[-1])[1]
    return nominal_time_run.NominalTimeRunFacet(nominalStartTime=f"{start.isoformat()}T00:00:00Z",
                                                nominalEndTime=f"{end.isoformat()}T00:00:00Z")


@lru_cache(maxsize=8)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _config_input(settings: Settings, source_path: str | None) -> InputDataset:
    """The config file a reference table is built from (the library config unless the asset
    names another YAML file) as an input dataset, versioned by its SHA-256."""
    path = Path(source_path) if source_path and source_path.endswith((".yaml", ".yml")) else settings.library_config
    stat = path.stat()
    return InputDataset(namespace=f"file://{path.parent}", name=path.name, facets={
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=_file_sha256(str(path), stat.st_mtime_ns, stat.st_size))},
        inputFacets={"inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
            size=stat.st_size, fileCount=1)})


def _checked_inputs(observation, namespace: str) -> list[InputDataset]:
    """Each table the run checked, as the input its checks read, with their results.

    The assertions facet is an input-dataset facet in the spec: a check reads the dataset it
    tests. Here the checks read what the same run has just written.
    """
    checked = []
    for table, assertions in observation.assertions.items():
        facet = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=[
            data_quality_assertions_dataset.Assertion(**{k: v for k, v in a.items() if v is not None})
            for a in assertions])
        checked.append(InputDataset(namespace=namespace, name=table, inputFacets={"dataQualityAssertions": facet}))
    return checked


def build_event(state: RunState, observation, settings: Settings, error: BaseException | None = None) -> RunEvent:
    """A START, COMPLETE or FAIL RunEvent for ``observation`` (an ``lineage.observe.Observation``)."""
    set_producer(PRODUCER)
    if state == RunState.START and observation.sql:
        prefetch_sql_lineage(observation.sql)
    dagster_version, client_version = _versions()
    run_facets: dict = {
        "parent": parent_run.ParentRunFacet(run=parent_run.Run(runId=parent_run_uuid(observation.run_id)),
                                            job=parent_run.Job(namespace=NAMESPACE, name=PARENT_JOB)),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=dagster_version, name="Dagster", openlineageAdapterVersion=client_version),
    }
    nominal = _nominal_time(observation.partition_keys)
    if nominal:
        run_facets["nominalTime"] = nominal
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=f"{type(error).__name__}: {error}", programmingLanguage="python",
            stackTrace="".join(traceback.format_exception(error)))

    tables = table_namespace(settings)
    inputs = [InputDataset(namespace=tables, name=name) for name in observation.inputs]
    # Which datasets an edge's input stands for: a table, the feed's landing files, the config.
    datasets: dict[str, list[tuple[str, str]]] = {name: [(tables, name)] for name in observation.inputs}
    landing = landing_namespace(settings)
    for item in observation.landing_files:
        inputs.append(InputDataset(namespace=landing, name=item["file"], facets={
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=item["sha256"])},
            inputFacets={"inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                rowCount=item.get("rows_read"), size=item.get("bytes"), fileCount=1)}))
        datasets.setdefault(item["file"].split("/", 1)[0], []).append((landing, item["file"]))
    declared = [edge for name in observation.outputs for edge in REFERENCE.get(name, ())]
    if declared:
        config = _config_input(settings, observation.source_path)
        inputs.append(config)
        for edge in declared:
            datasets[edge.input_table] = [(config.namespace, config.name)]

    outputs = []
    for name in observation.outputs:
        facets = dict(contract_facets(name))
        output_facets = {}
        if state == RunState.COMPLETE:
            lineage = column_lineage_facet(name, observation.sql, datasets)
            if lineage is not None:
                facets["columnLineage"] = lineage
            stats = observation.output_stats.get(name)
            if stats:
                output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=stats.get("rows"), size=stats.get("bytes"), fileCount=stats.get("files"))
        outputs.append(OutputDataset(namespace=tables, name=name, facets=facets, outputFacets=output_facets))
    if state != RunState.START:
        inputs += _checked_inputs(observation, tables)

    return RunEvent(
        eventType=state, eventTime=_now(), producer=PRODUCER,
        run=Run(runId=run_uuid(observation.run_id, observation.job), facets=run_facets),
        job=Job(namespace=NAMESPACE, name=observation.job,
                facets=job_facets(observation.job, tuple(observation.outputs), observation.sql, observation.source_path)),
        inputs=inputs, outputs=outputs)
