"""The HTTP interface's OpenAPI 3.0 description, generated from the contracts.

Each dataset gets a schema (``components.schemas``, named ``layer.table``) with one property per
contract column (JSON type from its DuckDB type, ``nullable`` unless the column is required,
enumerations and patterns from the contract), and its own rows path, whose filters are its
date column's. A caller sees the columns its role may see, so no property is required.
"""

from __future__ import annotations

from quality.freshness import freshness_column
from schemas.model import Column, Contract
from schemas.vocabulary import LEVELS

MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "parquet": "application/vnd.apache.parquet",
               "arrow": "application/vnd.apache.arrow.stream"}
JSON_TYPES = {"VARCHAR": {"type": "string"}, "BIGINT": {"type": "integer"}, "INTEGER": {"type": "integer"},
              "DOUBLE": {"type": "number"}, "BOOLEAN": {"type": "boolean"},
              "DATE": {"type": "string", "format": "date"},
              # Stored without an offset (the column's description says UTC or library time): not RFC 3339.
              "TIMESTAMP": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"},
              "VARCHAR[]": {"type": "array", "items": {"type": "string"}}}
ERROR_CODES = {"400": "A credential in the URL: send tokens only in the Authorization header, and revoke this one.",
               "401": "No token, or a malformed, unknown or revoked one.",
               "403": "Outside the token's role: `refused` names the columns or tables.",
               "404": "No such dataset.",
               "413": "A request body over the limit (1 MB).",
               "422": "A bad parameter or query, or over the time or result-size limit; `message` says which.",
               "429": "Over the request rate (per token; one shared by requests without a valid token); "
                      "retry after `Retry-After` seconds."}


def filter_column(contract: Contract) -> str | None:
    """The date column a dataset's rows are filtered on: its partition column, else the one saying how new a row is."""
    column = freshness_column(contract)
    if column is None or column not in contract.column_names:
        return None
    return column if contract.column(column).physical_type in ("DATE", "TIMESTAMP") else None


def column_schema(column: Column) -> dict:
    schema = dict(JSON_TYPES[column.physical_type])
    if column.physical_type == "VARCHAR[]":
        schema["items"] = dict(schema["items"])
    if column.allowed_values and column.physical_type == "VARCHAR":
        schema["enum"] = list(column.allowed_values) + ([] if column.required else [None])
    schema["nullable"] = True      # not required, or suppressed by disclosure control for the public role
    if column.description:
        schema["description"] = column.description
    return schema


def dataset_schema(contract: Contract) -> dict:
    return {"type": "object", "description": contract.description, "additionalProperties": False,
            "properties": {c.name: column_schema(c) for c in contract.columns}}


def _error_schema() -> dict:
    return {"type": "object", "required": ["error", "message"],
            "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                           "refused": {"type": "array", "items": {"type": "string"}},
                           "parameter": {"type": "string"}, "dataset": {"type": "string"}}}


def _errors(*codes: str) -> dict:
    return {code: {"description": ERROR_CODES[code],
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for code in codes}


def _tabular(schema: dict) -> dict:
    binary = {"type": "string", "format": "binary"}
    return {"application/json": {"schema": schema}, "text/csv": {"schema": {"type": "string"}},
            MEDIA_TYPES["parquet"]: {"schema": binary}, MEDIA_TYPES["arrow"]: {"schema": binary}}


def _rows_operation(contract: Contract, limits) -> dict:
    name = contract.qualified_name
    params = [
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": limits.max_page_size, "default": limits.page_size}},
        {"name": "offset", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "default": 0}},
        {"name": "format", "in": "query", "required": False,
         "schema": {"type": "string", "enum": list(MEDIA_TYPES), "default": "json"}},
    ]
    column = filter_column(contract)
    if column:
        for end, word in (("from", "on or after"), ("to", "on or before")):
            params.append({"name": f"{column}_{end}", "in": "query", "required": False,
                           "description": f"Rows whose {column} is {word} this day.",
                           "schema": {"type": "string", "format": "date"}})
    page = {"type": "object", "required": ["dataset", "limit", "offset", "count", "rows"],
            "properties": {"dataset": {"type": "string", "enum": [name]}, "limit": {"type": "integer"},
                           "offset": {"type": "integer"}, "count": {"type": "integer"},
                           "next": {"type": "string", "nullable": True},
                           "rows": {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}}}
    return {"get": {
        "operationId": f"rows_{contract.layer}_{contract.table}", "tags": [contract.layer],
        "summary": f"A page of {name}", "description": contract.description
        + (f" Filter on {column}." if column else "") + " Ordered by its key, so pages do not overlap.",
        "parameters": params,
        "responses": {"200": {"description": f"Rows of {name}, the columns the caller's role may see.",
                              "content": _tabular(page)},
                      **_errors("400", "401", "403", "404", "422", "429")}}}


def openapi_document(contracts: dict[str, Contract], limits) -> dict:
    """The description of the API over ``contracts``, within ``limits`` (pipelines.api_callers.ApiLimits)."""
    column_info = {"type": "object", "required": ["name", "type", "classification"],
                   "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                                  "classification": {"type": "string", "enum": list(LEVELS)},
                                  "required": {"type": "boolean"}, "description": {"type": "string"}}}
    freshness = {"type": "object", "properties": {
        "published_at": {"type": "string", "format": "date-time", "nullable": True},
        "rows": {"type": "integer", "nullable": True}, "newest": {"type": "string", "nullable": True},
        "stale": {"type": "boolean", "nullable": True}, "freshness_days": {"type": "number", "nullable": True}}}
    dataset = {"type": "object", "required": ["name", "layer", "table", "columns", "freshness", "rows_url"],
               "properties": {"name": {"type": "string"}, "layer": {"type": "string"}, "table": {"type": "string"},
                              "description": {"type": "string"}, "owner": {"type": "string", "nullable": True},
                              "partitioning": {"type": "string", "nullable": True},
                              "filter_column": {"type": "string", "nullable": True},
                              "columns": {"type": "array", "items": column_info},
                              "freshness": freshness, "rows_url": {"type": "string"},
                              "contract": {"type": "object", "description": "The ODCS v3.1 contract."}}}
    schemas = {"Error": _error_schema(), "Dataset": dataset}
    schemas |= {name: dataset_schema(c) for name, c in sorted(contracts.items())}
    layers = sorted({c.layer for c in contracts.values()})
    paths = {
        "/api/v1/datasets": {"get": {
            "operationId": "list_datasets", "summary": "The datasets the caller's role may see",
            "responses": {"200": {"description": "Datasets with their visible columns and freshness.",
                                  "content": {"application/json": {"schema": {
                                      "type": "object", "required": ["role", "datasets"],
                                      "properties": {"role": {"type": "string"},
                                                     "datasets": {"type": "array",
                                                                  "items": {"$ref": "#/components/schemas/Dataset"}}}}}}},
                          **_errors("401", "429")}}},
        "/api/v1/datasets/{layer}/{table}": {"get": {
            "operationId": "get_dataset", "summary": "One dataset, with its ODCS contract",
            "parameters": [{"name": "layer", "in": "path", "required": True, "schema": {"type": "string", "enum": layers}},
                           {"name": "table", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": sorted({c.table for c in contracts.values()})}}],
            "responses": {"200": {"description": "The dataset.",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Dataset"}}}},
                          **_errors("401", "403", "404", "429")}}},
        "/api/v1/query": {"post": {
            "operationId": "query", "summary": "Run one SELECT through the SQL guard, as `shuku sql --role`",
            "description": f"At most {limits.max_query_rows:,} rows and {limits.query_timeout_s:g} s per query.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["sql"],
                "properties": {"sql": {"type": "string", "minLength": 1},
                               "format": {"type": "string", "enum": list(MEDIA_TYPES), "default": "json"}}}}}},
            "responses": {"200": {"description": "The result.", "content": _tabular({
                "type": "object", "required": ["columns", "count", "rows"],
                "properties": {"columns": {"type": "array", "items": {"type": "string"}}, "count": {"type": "integer"},
                               "sql": {"type": "string", "description": "The checked statement that ran."},
                               "rows": {"type": "array", "items": {"type": "object"}}}})},
                          **_errors("400", "401", "403", "413", "422", "429")}}},
        "/api/v1/trace/{target}": {"get": {
            "operationId": "trace", "summary": "The trace of a column, as `shuku trace --format json`",
            "parameters": [{"name": "target", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": r"^[a-z_]+\.[a-z0-9_]+\.[a-z0-9_]+$"},
                            "example": "marts.space_utilisation.occupancy_peak"},
                           {"name": "partition", "in": "query", "required": False,
                            "schema": {"type": "string", "pattern": r"^\d{4}-\d{2}(-\d{2})?$"}},
                           {"name": "downstream", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": ["true", "false"], "default": "false"}}],
            "responses": {"200": {"description": "Hops from the column to its landing files (or to what it feeds).",
                                  "content": {"application/json": {"schema": {
                                      "type": "object", "required": ["target", "direction", "hops", "landing_files"],
                                      "properties": {"target": {"type": "string"}, "direction": {"type": "string"},
                                                     "partition": {"type": "string", "nullable": True},
                                                     "hops": {"type": "array", "items": {"type": "object"}},
                                                     "landing_files": {"type": "array", "items": {"type": "object"}}}}}}},
                          **_errors("401", "403", "422", "429")}}},
    }
    for name, contract in sorted(contracts.items()):
        paths[f"/api/v1/datasets/{contract.layer}/{contract.table}/rows"] = _rows_operation(contract, limits)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Shuku (书库) data interface", "version": "1.0.0",
                 "description": "Read-only access to the library's warehouse within a role: datasets, rows, "
                                "guarded SQL and lineage. Generated from the ODCS contracts."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "A token from `shuku token create`."}}},
    }
