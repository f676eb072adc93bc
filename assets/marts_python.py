"""Marts SQL cannot say: the seat demand forecast, numpy over the hourly occupancy of
marts.space_utilisation (assets.forecast). Every other mart is a SQL model (assets/models/marts),
the library's settings reaching it through reference tables."""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg
import duckdb
import polars as pl

from assets.forecast import seat_demand_tables
from assets.table_asset import TableRun, Written, table_asset
from schemas.model import conform, contract_for
from warehouse.lake.partitions import write_table
from warehouse.lake.views import compute_connection
from warehouse.settings import Settings


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

    def build(run: TableRun) -> Written:
        frame = build_mart(mart, run.settings)
        path = write_table(run.settings, contract, frame)
        return Written(rows=frame.height, bytes=path.stat().st_size, files=1,
                       metadata={"path": dg.MetadataValue.path(str(path))})

    return table_asset([mart.qualified_name], build, group="marts", kinds={"duckdb", "python", "parquet"},
                       inputs=mart.inputs, source_path=str(Path(__file__)))


def build_python_mart_assets() -> list[dg.AssetsDefinition]:
    return [_python_asset(m) for m in PYTHON_MARTS]
