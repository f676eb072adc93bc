"""The Dagster assets of the SQL models: one per `.sql` file, made by the table asset factory."""

import dagster as dg

from assets.models.incremental import build_model
from assets.models.sql_model import SqlModel, discover_models
from assets.table_asset import TableRun, Written, table_asset
from quality.checks import checked_against
from schemas.model import contract_for


def _model_asset(model: SqlModel) -> dg.AssetsDefinition:
    def build(run: TableRun) -> Written:
        built = build_model(run.settings, model)
        if not built.rebuilt:
            run.context.log.info(f"{model.qualified_name}: its inputs are as they were when it was last built; "
                                 "the table is kept as it is")
        return Written(rows=built.rows, bytes=built.bytes, files=built.files, checked=built.checked,
                       metadata={"rebuilt": built.rebuilt, "path": dg.MetadataValue.path(str(built.path)),
                                 **built.metadata})

    upstream = model.upstream()
    return table_asset([model.qualified_name], build, group=model.layer, kinds={"duckdb", "sql", "parquet"},
                       inputs=upstream,
                       deps=list(dict.fromkeys(upstream + checked_against(contract_for(model.qualified_name)))),
                       sql=model.sql, source_path=str(model.path),
                       metadata={"sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```")})


def build_model_assets() -> list[dg.AssetsDefinition]:
    return [_model_asset(m) for m in discover_models()]
