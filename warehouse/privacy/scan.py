"""Search a home folder for values: card numbers, pseudonyms, names, e-mails.

Parquet files and DuckDB databases are read column by column (their pages are compressed,
so their bytes would hide a value); gzip files are decompressed; every other file (the
lineage events, logs, Dagster's SQLite event log) is searched byte for byte.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Iterable

import duckdb

from warehouse.lake.views import sql_string
from warehouse.settings import Settings

# Authors are public bibliographic data and may share a reader's name.
IGNORED_COLUMNS = ("author",)


def _trie_pattern(needles: Iterable[str]) -> str:
    """A regular expression that finds any of ``needles``, written as a trie of their characters:
    a search tries the few needles that share the text's next characters, not all of them (a
    home's patron export gives thousands)."""
    trie: dict = {}
    for needle in needles:
        node = trie
        for char in needle:
            node = node.setdefault(char, {})
        node[""] = {}

    def branch(node: dict) -> str:
        arms = [re.escape(char) + branch(child) for char, child in sorted(node.items()) if char]
        if not arms:
            return ""
        body = arms[0] if len(arms) == 1 else "(?:" + "|".join(arms) + ")"
        return f"(?:{body})?" if "" in node else body

    return branch(trie)


def _columns_holding(con, source: str, needles: re.Pattern[str], ignore: Iterable[str]) -> list[str]:
    """Text columns (lists of text included) of ``source`` with a value containing one of ``needles``."""
    described = con.execute(f"describe select * from {source}").fetchall()
    text_cols = [r[0] for r in described if r[0] not in ignore and (r[1] == "VARCHAR" or r[1].startswith("VARCHAR["))]
    found = []
    for col in text_cols:
        values = [v for (v,) in con.execute(f'select distinct cast("{col}" as varchar) from {source}').fetchall() if v]
        if any(needles.search(v) for v in values):
            found.append(col)
    return found


def _file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return data
    return data


def find_values(settings: Settings, needles: set[str], *, landing: bool = True, restricted: bool = True,
                ignore_columns: Iterable[str] = IGNORED_COLUMNS) -> list[tuple[str, str]]:
    """Where under the home folder a needle was found: (file relative to home[:schema.table], column or "bytes")."""
    needles = {n for n in needles if n}
    if not needles:
        return []
    skip = ([] if landing else [settings.landing]) + ([] if restricted else [settings.restricted])
    pattern = _trie_pattern(needles)
    text_needles, byte_needles = re.compile(pattern), re.compile(pattern.encode("utf-8"))
    con = duckdb.connect()
    found = []
    try:
        for path in sorted(settings.home.rglob("*")):
            if not path.is_file() or any(folder in path.parents for folder in skip):
                continue
            where = str(path.relative_to(settings.home))
            if path.suffix == ".parquet":
                found += [(where, col) for col in
                          _columns_holding(con, f"read_parquet({sql_string(path)})", text_needles, ignore_columns)]
            elif path.suffix == ".duckdb":
                try:
                    con.execute(f"ATTACH {sql_string(path)} AS scanned (READ_ONLY)")
                except duckdb.Error as exc:
                    found.append((where, f"not scanned: {type(exc).__name__} (held by another process?)"))
                    continue
                try:
                    tables = con.execute("select schema_name, table_name from duckdb_tables() "
                                         "where database_name = 'scanned'").fetchall()
                    for schema, table in tables:
                        found += [(f"{where}:{schema}.{table}", col) for col in
                                  _columns_holding(con, f'scanned."{schema}"."{table}"', text_needles, ignore_columns)]
                finally:
                    con.execute("DETACH scanned")
            else:
                data = _file_bytes(path)
                if byte_needles.search(data):
                    found.append((where, "bytes"))
    finally:
        con.close()
    return found
