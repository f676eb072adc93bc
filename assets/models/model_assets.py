"""The Dagster assets of the SQL models: one per `.sql` file."""

import dagster as dg
from dagster import AssetExecutionContext

from assets.metadata import asset_tags, definition_metadata
from assets.models.incremental import build_model
from assets.models.sql_model import SqlModel, discover_models
from assets.resources import ShukuWarehouse
from lineage.observe import observe
from quality.checks import check_specs, checked_against, evaluate
from warehouse.contracts import contract_for
from warehouse.lake.views import refresh_warehouse_views


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
