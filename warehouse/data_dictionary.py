"""The data dictionary written with every publish: `schemas.dictionary` with a few example values
from the lake, under the home (``docs/data-dictionary.md`` and ``.html``).

Examples come only from core and marts columns that hold nothing personal: classified public or
internal, ``pii: none``, unmasked; a count under its ``minCellSize`` is left out. Pseudonyms,
free text typed by readers and anything confidential or restricted never appear.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from schemas.dictionary import write_docs
from schemas.model import Column, Contract, load_contracts
from schemas.roles import level
from warehouse.settings import Settings

EXAMPLE_LAYERS = ("core", "marts")
EXAMPLES_PER_COLUMN = 3
ROWS_LOOKED_AT = 500
LONGEST_EXAMPLE = 40


def dictionary_path(settings: Settings) -> Path:
    """Where the published data dictionary is (its Markdown beside it)."""
    return settings.home / "docs" / "data-dictionary.html"


def may_show(column: Column) -> bool:
    """Whether example values of ``column`` may be printed in the dictionary."""
    return level(column.classification) <= level("internal") and column.pii == "none" and not column.masking


def _example(value, column: Column) -> str | None:
    if value is None or (column.min_cell_size and isinstance(value, int) and 0 < value < column.min_cell_size):
        return None
    if isinstance(value, float):
        text = f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4g}"
    else:
        text = str(value)
    return text if len(text) <= LONGEST_EXAMPLE else text[:LONGEST_EXAMPLE - 1] + "…"


def table_examples(con, contract: Contract) -> dict[str, list[str]]:
    """Up to three distinct values of each showable column, from the first rows of the table."""
    columns = [c for c in contract.columns if may_show(c)]
    if not columns:
        return {}
    select = ", ".join(f'"{c.name}"' for c in columns)
    try:
        rows = con.execute(f"SELECT {select} FROM {contract.qualified_name} LIMIT {ROWS_LOOKED_AT}").fetchall()
    except duckdb.Error:    # a table not built yet (no view, no files): no examples, the rest still documented
        return {}
    found: dict[str, list[str]] = {}
    for i, column in enumerate(columns):
        values: list[str] = []
        for row in rows:
            text = _example(row[i], column)
            if text is not None and text not in values:
                values.append(text)
                if len(values) == EXAMPLES_PER_COLUMN:
                    break
        if values:
            found[column.name] = values
    return found


def write_dictionary(settings: Settings, con) -> Path:
    """Write the dictionary with examples read through ``con`` (views over the lake); its HTML path."""
    contracts = load_contracts()
    examples = {name: table_examples(con, c) for name, c in contracts.items() if c.layer in EXAMPLE_LAYERS}
    write_docs(dictionary_path(settings).parent, contracts, examples)
    return dictionary_path(settings)
