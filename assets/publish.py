"""`access/role_databases`: the per-role published databases, rebuilt after core and marts."""

from __future__ import annotations

import dagster as dg

from assets.marts_python import TABLES as PYTHON_MART_TABLES
from assets.models.sql_model import discover_models
from assets.reference import BUILDERS
from assets.resources import ShukuWarehouse
from warehouse.access import publish
from warehouse.data_dictionary import dictionary_path


def _upstream() -> list[dg.AssetKey]:
    """Every core and marts asset: the SQL models, the Python marts and the reference dimensions."""
    keys = [dg.AssetKey([m.layer, m.name]) for m in discover_models()]
    keys += [dg.AssetKey(name.split(".")) for name in PYTHON_MART_TABLES]
    return keys + [dg.AssetKey(["core", table]) for table in BUILDERS]


@dg.asset(key=["access", "role_databases"], deps=_upstream(), group_name="access",
          description="One read-only DuckDB file per role (access/<role>.duckdb) holding only the tables "
                      "and columns that role may see, swapped in by rename; with them the data dictionary "
                      "(docs/data-dictionary.html under the home: every table and column, its meaning, unit, "
                      "classification and example values).")
def role_databases(shuku: ShukuWarehouse) -> dg.MaterializeResult:
    published = publish(shuku.settings())
    return dg.MaterializeResult(metadata={
        "roles": dg.MetadataValue.json({p.role: {"tables": len(p.tables), "copied": len(p.copied),
                                                 "partitions_replaced": sum(p.partitions.values()), "bytes": p.bytes,
                                                 "shared_with": p.shared_with} for p in published}),
        "folder": dg.MetadataValue.path(str(published[0].path.parent)) if published else "",
        "data_dictionary": dg.MetadataValue.url(dictionary_path(shuku.settings()).as_uri()),
    })
