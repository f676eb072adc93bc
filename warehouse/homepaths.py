"""Paths kept relative to the home folder, so that a home can be copied, moved or restored.

What Shuku stores names files relative to the home (``lake/core/fact_loan/…``,
``landing/circulation/…``) and resolves them against the current home when it reads them.
The views of ``warehouse.duckdb`` read relative globs: every connection Shuku opens sets
DuckDB's ``file_search_path`` to the home, and a plain DuckDB client finds the files when it
runs in the home folder (elsewhere it fails with "No files found", never reading another
home's files). Views that an older version wrote with absolute paths are found here and
rewritten by the next refresh.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from warehouse.settings import Settings

# A SQL string literal holding an absolute path (a view written before paths were relative).
ABSOLUTE_LITERAL = re.compile(r"'(/[^']*)'")


def relative(settings: Settings, path: Path | str) -> str:
    """``path`` (under the home) relative to the home, with forward slashes."""
    return Path(path).relative_to(settings.home).as_posix()


def duckdb_config(settings: Settings) -> dict[str, str]:
    """Connection settings that make the views' relative globs read the current home's files."""
    if "," in str(settings.home):
        raise ValueError(f"{settings.home}: DuckDB's file_search_path cannot hold a folder whose name has a comma; "
                         "move the home folder (SHUKU_HOME) to a path without one.")
    return {"file_search_path": str(settings.home)}


def views_with_absolute_paths(con: duckdb.DuckDBPyConnection) -> list[str]:
    """``layer.table`` of each view that reads a file by an absolute path (written by an older
    version, or in another home): they are to be created again with relative paths."""
    rows = con.execute("SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
    return sorted(f"{schema}.{view}" for schema, view, sql in rows if sql and ABSOLUTE_LITERAL.search(sql))
