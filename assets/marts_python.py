"""Marts SQL cannot say: the seat demand forecast, numpy over the hourly occupancy of
marts.space_utilisation (assets.forecast). Every other mart is a SQL model (assets/models/marts),
the library's settings reaching it through reference tables."""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg
import duckdb
import polars as pl
from dagster import AssetExecutionContext

from assets.forecast import seat_demand_tables
from assets.metadata import asset_tags, definition_metadata
from assets.resources import ShukuWarehouse
from lineage.observe import observe
from quality.checks import check_specs, evaluate
from schemas.model import conform, contract_for
from warehouse.settings import Settings
from warehouse.storage import compute_connection, refresh_warehouse_views, write_table


# ---- the assets -----------------------------------------------------------------------

@dataclass(frozen=True)
class PythonMart:
    """A mart computed in Python: ``build`` makes its frame from a connection holding ``inputs``."""

    name: str
    inputs: tuple[str, ...]
    build: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]

    @property
    def qualified_name(self) -> str:
        return f"marts.{self.name}"


def _forecast(table: str) -> Callable[[duckdb.DuckDBPyConnection], pl.DataFrame]:
    def build(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
        return seat_demand_tables(con)[table]
    return build


FORECAST_INPUTS = ("marts.space_utilisation", "core.dim_date", "core.dim_zone")

PYTHON_MARTS: tuple[PythonMart, ...] = (
    PythonMart("seat_demand_forecast", FORECAST_INPUTS, _forecast("seat_demand_forecast")),
    PythonMart("seat_demand_backtest", FORECAST_INPUTS, _forecast("seat_demand_backtest")),
)
TABLES = tuple(m.qualified_name for m in PYTHON_MARTS)


def build_mart(mart: PythonMart, settings: Settings) -> pl.DataFrame:
    """The mart's rows, conformed to its contract."""
    con = compute_connection(settings, list(mart.inputs))
    try:
        frame = mart.build(con)
    finally:
        con.close()
    contract = contract_for(mart.qualified_name)
    if frame.width == 0:          # nothing to compute from yet: the table is written empty, typed
        frame = pl.DataFrame(schema=contract.polars_schema())
    return conform(frame, contract)


def _python_asset(mart: PythonMart) -> dg.AssetsDefinition:
    contract = contract_for(mart.qualified_name)

    @dg.asset(key=["marts", mart.name], description=contract.description, group_name="marts",
              deps=[dg.AssetKey(name.split(".")) for name in mart.inputs],
              metadata=definition_metadata(contract), tags=asset_tags(contract),
              owners=[f"team:{contract.owner}"] if contract.owner else None,
              kinds={"duckdb", "python", "parquet"}, check_specs=check_specs(contract) or None)
    def python_mart(context: AssetExecutionContext, shuku: ShukuWarehouse):
        settings = shuku.settings()
        run_id = context.run.run_id
        with observe(settings, job=mart.qualified_name, run_id=run_id, inputs=list(mart.inputs),
                     outputs=[mart.qualified_name], source_path=str(Path(__file__))) as observation:
            frame = build_mart(mart, settings)
            path = write_table(settings, contract, frame)
            refresh_warehouse_views(settings, [contract])
            observation.add_output(mart.qualified_name, rows=frame.height, bytes=path.stat().st_size, files=1)
            results = list(evaluate(contract, settings, run_id=run_id, partition_keys=None))
            observation.add_check_results(mart.qualified_name, results)
        yield dg.MaterializeResult(metadata={"dagster/row_count": frame.height, "path": dg.MetadataValue.path(str(path))})
        yield from results

    return python_mart


def build_python_mart_assets() -> list[dg.AssetsDefinition]:
    return [_python_asset(m) for m in PYTHON_MARTS]
