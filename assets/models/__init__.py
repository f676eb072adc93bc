"""SQL models: one `.sql` file per core and mart table, in the DuckDB dialect.

Dependencies come from parsing each file with sqlglot (every `layer.table` it reads), never
from regular expressions. A model runs on an in-memory DuckDB whose views read the lake, so
it never holds `warehouse.duckdb`; its result is checked against the contract before the
Parquet file is replaced.

A model whose inputs are as they were when it last wrote its table (the same SQL and contract,
every upstream table's files unchanged, its own file the one it wrote) is not run again: a
nightly run leaves the catalogue's dimensions alone when the catalogue export did not change.
Its checks still run on the table as it stands.

A model whose contract partitions it by day (the facts of daily logs) is built day by day: a
day is rebuilt when the partitions it is computed from (that day of its day-partitioned
upstream tables, and the ``partitionLookbackDays`` before it) or anything else it reads
changed. The SQL is the same either way: the upstream views hold only the days needed, and the
result is written to the changed days' partitions. A nightly run computes one day, not a year.
"""


import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext
import sqlglot
from sqlglot import exp

from assets.metadata import asset_tags, definition_metadata
from assets.resources import ShukuWarehouse
from lineage.observe import observe
from quality.checks import check_specs, checked_against, evaluate
from quality.results import partition_label
from schemas.model import ContractViolation, contract_for
from schemas.vocabulary import MODEL_LAYERS
from warehouse.settings import Settings
from warehouse.storage import (PART_FILE, compute_connection, files_digest, parquet_rows, partition_stamps,
                               refresh_warehouse_views, remove_partitions, remove_table, table_dir, view_sql,
                               write_query_partitions, write_query_table, write_text_atomic)

MODELS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SqlModel:
    layer: str
    name: str
    path: Path
    sql: str

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.name}"

    def upstream(self) -> list[str]:
        """Every `layer.table` the model reads (CTE names excluded)."""
        tree = sqlglot.parse_one(self.sql, dialect="duckdb")
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        tables = set()
        for table in tree.find_all(exp.Table):
            if table.db and table.name not in ctes:
                tables.add(f"{table.db}.{table.name}")
        return sorted(tables)

    def portability_problems(self) -> list[str]:
        """What in the model would not mean the same on Spark or Trino once sqlglot transpiles it:
        reading files or tables other than `layer.table` (the lake is read in one place, the
        views), GROUP BY ALL (Trino reads it as a set quantifier) and QUALIFY (rewritten, with
        changed null ordering)."""
        tree = sqlglot.parse_one(self.sql, dialect="duckdb")
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        problems = []
        for table in tree.find_all(exp.Table):
            if isinstance(table.this, exp.Func) or isinstance(table.this, exp.Identifier) and table.this.quoted and "." in table.name:
                problems.append(f"reads {table.this.sql('duckdb')}: read `layer.table` views, not files")
            elif not table.db and table.name not in ctes:
                problems.append(f"reads {table.name} without its layer: write `layer.{table.name}`")
        if any(group.args.get("all") for group in tree.find_all(exp.Group)):
            problems.append("GROUP BY ALL: name the grouped columns")
        if any(tree.find_all(exp.Qualify)):
            problems.append("QUALIFY: filter the window's result in the next CTE")
        return problems

    def in_dialect(self, dialect: str) -> str:
        """The model transpiled by sqlglot to another engine's SQL (e.g. "spark", "trino").
        A model that would not carry over (see `portability_problems`) raises ValueError naming its file."""
        problems = self.portability_problems()
        if problems:
            raise ValueError(f"{self.path}: {self.qualified_name} is not portable to {dialect}:\n"
                             + "\n".join(f"  - {p}" for p in problems))
        return sqlglot.transpile(self.sql, read="duckdb", write=dialect, pretty=True,
                                 unsupported_level=sqlglot.ErrorLevel.RAISE)[0]


def discover_models(root: Path = MODELS_DIR) -> list[SqlModel]:
    models = []
    for layer in MODEL_LAYERS:
        for path in sorted((root / layer).glob("*.sql")):
            models.append(SqlModel(layer, path.stem, path, path.read_text(encoding="utf-8")))
    return models


def check_result_columns(con, model: SqlModel) -> None:
    """Compare the model's output columns and DuckDB types with its contract, before writing."""
    contract = contract_for(model.qualified_name)
    described = con.execute(f"DESCRIBE ({model.sql})").fetchall()
    actual = {row[0]: row[1] for row in described}
    expected = {c.name: c.physical_type for c in contract.columns}
    problems = [f"  - missing column {n} ({t})" for n, t in expected.items() if n not in actual]
    problems += [f"  + unexpected column {n} ({t})" for n, t in actual.items() if n not in expected]
    problems += [f"  ~ column {n}: contract says {t}, model gives {actual[n]}"
                 for n, t in expected.items() if n in actual and actual[n] != t]
    order = [n for n in actual if n in expected]
    if not problems and order != list(expected):
        problems.append(f"  column order {order} differs from the contract's {list(expected)}")
    if problems:
        raise ContractViolation(
            f"{model.qualified_name} ({model.path.name}) does not match its contract {contract.path.name}:\n"
            + "\n".join(problems) + "\nFix the model's final select, or change the contract (a breaking change).")


def inputs_record_path(settings: Settings, model: SqlModel) -> Path:
    return settings.lake / "meta" / "model_inputs" / f"{model.qualified_name}.json"


def inputs_digest(settings: Settings, model: SqlModel, leaving_out: tuple[str, ...] = ()) -> str:
    """What the model's table is computed from: its SQL, its contract, its upstream tables' files
    (but those ``leaving_out``: a day-partitioned model follows those day by day)."""
    contract = contract_for(model.qualified_name)
    parts = [model.sql, contract.path.read_text(encoding="utf-8")]
    parts += [f"{name}:{files_digest(settings, contract_for(name))}" for name in model.upstream()
              if name not in leaving_out]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _last_record(settings: Settings, model: SqlModel) -> dict:
    """What the model's last build recorded (empty when there is none or it cannot be read)."""
    try:
        record = json.loads(inputs_record_path(settings, model).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def is_up_to_date(settings: Settings, model: SqlModel, digest: str) -> bool:
    """The table was written by the model from inputs with ``digest``, and is still that file."""
    contract = contract_for(model.qualified_name)
    record = _last_record(settings, model)
    return (record.get("inputs") == digest
            and (table_dir(settings, contract) / PART_FILE).exists()
            and record.get("output") == files_digest(settings, contract))


def record_inputs(settings: Settings, model: SqlModel, digest: str) -> None:
    record = {"inputs": digest, "output": files_digest(settings, contract_for(model.qualified_name))}
    write_text_atomic(inputs_record_path(settings, model), json.dumps(record))


@dataclass
class DayPlan:
    """What a day-partitioned model must do: the days to rebuild (and the partitions of its
    day-partitioned upstream tables they read), the days whose inputs are gone, and the digest of
    every day's inputs to record."""

    rebuild: list[str]
    remove: list[str]
    reads: list[str]
    digests: dict[str, str]
    drivers: list[str]


def plan_days(settings: Settings, model: SqlModel) -> DayPlan:
    """Compare each day's inputs with those recorded at the last build (see the module's notes)."""
    contract = contract_for(model.qualified_name)
    upstream = [contract_for(name) for name in model.upstream()]
    drivers = [c for c in upstream if c.partition_column is not None and c.partitioning == contract.partitioning]
    common = inputs_digest(settings, model, leaving_out=tuple(c.qualified_name for c in drivers))
    stamps = {c.qualified_name: partition_stamps(settings, c) for c in drivers}
    days = sorted({day for found in stamps.values() for day in found})
    back = contract.lookback_days

    def window(day: str) -> list[str]:
        first = dt.date.fromisoformat(day)
        return [(first - dt.timedelta(days=n)).isoformat() for n in range(back, -1, -1)]

    digests = {day: hashlib.sha256(json.dumps([common, [[stamps[name].get(d) for d in window(day)]
                                                        for name in sorted(stamps)]]).encode()).hexdigest()
               for day in days}
    record = _last_record(settings, model)
    seen, written = record.get("days"), record.get("outputs")
    if not isinstance(seen, dict) or not isinstance(written, dict):
        seen, written = {}, {}     # no record, or one of an unpartitioned build: every day is rebuilt
    outputs = partition_stamps(settings, contract)
    rebuild = [day for day in days if seen.get(day) != digests[day] or written.get(day) != outputs.get(day)]
    remove = sorted(set(outputs) - set(days))
    reads = sorted({d for day in rebuild for d in window(day)})
    return DayPlan(rebuild, remove, reads, digests, [c.qualified_name for c in drivers])


def build_days(settings: Settings, model: SqlModel, plan: DayPlan) -> None:
    """Rebuild the planned days of a day-partitioned model and record what each day was built from."""
    contract = contract_for(model.qualified_name)
    whole = table_dir(settings, contract) / PART_FILE
    if whole.exists():
        # The table's file from before it was partitioned (its record has no days: all are rebuilt).
        remove_table(settings, contract)
    if plan.rebuild:
        con = compute_connection(settings, [n for n in model.upstream() if n not in plan.drivers])
        try:
            for name in plan.drivers:
                upstream = contract_for(name)
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {upstream.layer}")
                con.execute(view_sql(settings, upstream, plan.reads))
            check_result_columns(con, model)
            write_query_partitions(settings, contract, con, model.sql, plan.rebuild)
        finally:
            con.close()
    if plan.remove:
        remove_partitions(settings, contract, plan.remove)
    record = {"days": plan.digests, "outputs": partition_stamps(settings, contract)}
    write_text_atomic(inputs_record_path(settings, model), json.dumps(record))


@dataclass
class Built:
    """What building a model did: whether it wrote anything, where the table is and its size, the
    partitions to check (None: the whole table) and what to show in the materialisation."""

    rebuilt: bool
    path: Path
    rows: int
    bytes: int
    files: int
    checked: list[str] | None
    metadata: dict


def build_model(settings: Settings, model: SqlModel, force: bool = False) -> Built:
    """Build a model's table from its SQL, unless its inputs are as they were (see the module's
    notes); ``force`` rebuilds an unpartitioned table whatever its record says (a day-partitioned
    one rebuilds every day whose inputs or output changed, which is what an erasure touched)."""
    contract = contract_for(model.qualified_name)
    if contract.partition_column is not None:
        plan = plan_days(settings, model)
        build_days(settings, model, plan)
        folder = table_dir(settings, contract)
        files = sorted(folder.glob(f"*/{PART_FILE}"))
        # The days rebuilt are checked; a table kept as it is has its newest day checked.
        checked = plan.rebuild or sorted(partition_stamps(settings, contract))[-1:]
        return Built(bool(plan.rebuild or plan.remove), folder, sum(parquet_rows(f) for f in files),
                     sum(f.stat().st_size for f in files), len(files), checked,
                     {"days_rebuilt": len(plan.rebuild), "days_removed": len(plan.remove),
                      "days_checked": dg.MetadataValue.text(partition_label(checked) if checked else "none")})
    digest = inputs_digest(settings, model)
    rebuilt = force or not is_up_to_date(settings, model, digest)
    path = table_dir(settings, contract) / PART_FILE
    if rebuilt:
        con = compute_connection(settings, model.upstream())
        try:
            check_result_columns(con, model)
            path = write_query_table(settings, contract, con, model.sql)
        finally:
            con.close()
        record_inputs(settings, model, digest)
    return Built(rebuilt, path, parquet_rows(path), path.stat().st_size, 1, None, {})


def _model_asset(model: SqlModel) -> dg.AssetsDefinition:
    contract = contract_for(model.qualified_name)

    @dg.asset(key=[model.layer, model.name], description=contract.description, group_name=model.layer,
              deps=[dg.AssetKey(name.split(".")) for name in dict.fromkeys(model.upstream() + checked_against(contract))],
              metadata={**definition_metadata(contract), "sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```")},
              tags=asset_tags(contract), owners=[f"team:{contract.owner}"] if contract.owner else None,
              kinds={"duckdb", "sql", "parquet"}, check_specs=check_specs(contract) or None)
    def model_asset(context: AssetExecutionContext, shuku: ShukuWarehouse):
        settings = shuku.settings()
        run_id = context.run.run_id
        with observe(settings, job=model.qualified_name, run_id=run_id, inputs=model.upstream(),
                     outputs=[model.qualified_name], sql=model.sql, source_path=str(model.path)) as observation:
            built = build_model(settings, model)
            if not built.rebuilt:
                context.log.info(f"{model.qualified_name}: its inputs are as they were when it was last built; "
                                 "the table is kept as it is")
            refresh_warehouse_views(settings, [contract])
            observation.add_output(model.qualified_name, rows=built.rows, bytes=built.bytes, files=built.files)
            results = list(evaluate(contract, settings, run_id=run_id, partition_keys=built.checked))
            observation.add_check_results(model.qualified_name, results)
        yield dg.MaterializeResult(metadata={"dagster/row_count": built.rows, "rebuilt": built.rebuilt,
                                             "path": dg.MetadataValue.path(str(built.path)), **built.metadata})
        yield from results

    return model_asset


def build_model_assets() -> list[dg.AssetsDefinition]:
    return [_model_asset(m) for m in discover_models()]
