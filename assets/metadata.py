"""Dagster metadata generated from the contracts (never written by hand)."""

from __future__ import annotations

import dagster as dg

from schemas.model import Contract


def column_schema(contract: Contract) -> dg.TableSchema:
    """The `dagster/column_schema` of a table: types, descriptions, classification as tags."""
    return dg.TableSchema(columns=[
        dg.TableColumn(
            name=c.name, type=c.physical_type, description=c.description,
            constraints=dg.TableColumnConstraints(nullable=not c.required, unique=c.unique),
            tags={"classification": c.classification, "pii": c.pii, **({"masking": c.masking} if c.masking else {})},
        )
        for c in contract.columns
    ])


def definition_metadata(contract: Contract) -> dict:
    return {
        "dagster/column_schema": column_schema(contract),
        "dagster/table_name": contract.qualified_name,
        "contract": dg.MetadataValue.path(str(contract.path)),
    }


def asset_tags(contract: Contract) -> dict[str, str]:
    return {"layer": contract.layer, "domain": contract.model.domain or contract.layer}
