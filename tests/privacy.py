"""Search a home folder for card numbers, names, e-mails and phones of the patron export."""

import csv
import io

import duckdb

from warehouse.settings import Settings
from warehouse.textio import read_text


def personal_values(settings: Settings) -> tuple[set[str], set[str]]:
    """(card numbers, other direct identifiers) of every reader in the landing patron exports."""
    cards, personal = set(), set()
    for path in (settings.landing / "patrons").glob("patrons_*.csv*"):
        text, _ = read_text(path)
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("cardnumber"):
                cards.add(row["cardnumber"])
            for key in ("email", "phone"):
                if row.get(key):
                    personal.add(row[key])
            if row.get("surname") and row.get("firstname"):
                personal.add(row["surname"] + row["firstname"])
    return cards, personal


def _columns_holding(con, source: str, needles: set[str]) -> list[str]:
    """Text columns of ``source`` with a value containing one of ``needles``."""
    described = con.execute(f"describe select * from {source}").fetchall()
    # Authors are public bibliographic data and may share a reader's name.
    text_cols = [r[0] for r in described if r[1] == "VARCHAR" and r[0] != "author"]
    found = []
    for col in text_cols:
        values = [v for (v,) in con.execute(f'select distinct "{col}" from {source}').fetchall() if v]
        if any(n in v for v in values for n in needles):
            found.append(col)
    return found


def find_personal_data(settings: Settings) -> list[tuple[str, str]]:
    """Where under the home folder (landing and the restricted area excepted) a value was found."""
    cards, personal = personal_values(settings)
    assert len(cards) > 20, "no patron export to take card numbers from"
    needles = cards | personal
    con = duckdb.connect()
    leaks = []
    for path in sorted(settings.home.rglob("*")):
        if not path.is_file() or settings.landing in path.parents or settings.restricted in path.parents:
            continue
        where = str(path.relative_to(settings.home))
        if path.suffix == ".parquet":
            leaks += [(where, col) for col in _columns_holding(con, f"read_parquet('{path}')", needles)]
        elif path.suffix == ".duckdb":
            con.execute(f"ATTACH '{path}' AS scanned (READ_ONLY)")
            tables = con.execute("select schema_name, table_name from duckdb_tables() where database_name = 'scanned'").fetchall()
            for schema, table in tables:
                leaks += [(f"{where}:{schema}.{table}", col)
                          for col in _columns_holding(con, f'scanned."{schema}"."{table}"', needles)]
            con.execute("DETACH scanned")
        else:
            data = path.read_bytes()
            if any(n.encode("utf-8") in data for n in needles):
                leaks.append((where, "bytes"))
    con.close()
    return leaks
