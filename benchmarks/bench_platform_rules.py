"""How often Shuku's platform rules agree with ezPAARSE's parsers, per platform and field.

    .venv/bin/python benchmarks/bench_platform_rules.py                # the held-out rows
    .venv/bin/python benchmarks/bench_platform_rules.py --rows all     # every row
    .venv/bin/python benchmarks/bench_platform_rules.py --misses tuning --platform sd

Reads ezPAARSE's platform test tables from ../shared/peers/ezpaarse-platforms/ (beside the
repository) when they are there. Each row is a URL and what ezPAARSE's parser makes of it. The
rules (assets/eresources/platform_rules/) were written from the *tuning* rows only: the 1st,
2nd, 4th, 5th, 7th… row of each table. Every third row (3rd, 6th, 9th…) is *held out*: the
rules never saw it, and the agreement printed by default is on those rows alone.

A field agrees when both give the same value (DOIs compared in lower case, every value
percent-decoded); it is counted over the rows where at least one of the two gives a value, so
a field neither fills is no agreement to boast of. The platform of a row is found from its host
by the rules' own host lists, as in a log.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from urllib.parse import unquote

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets.eresources.consultations import FIELDS, qualify  # noqa: E402
from assets.eresources.ezproxy import platform_of, url_parts  # noqa: E402

# ../shared beside the repository (a worktree may sit a level deeper)
_TABLES = Path("shared", "peers", "ezpaarse-platforms")
PEERS = next((p / _TABLES for p in ROOT.parents if (p / _TABLES).is_dir()), ROOT.parent / _TABLES)
AIMS = {"rtype": 0.95, "mime": 0.95, "unitid": 0.90, "doi": 0.90}
HELD_OUT_EVERY = 3


def read_tables(folder: Path) -> pl.DataFrame:
    """Every row of every table: table, position (1-based), held_out, URL and ezPAARSE's fields."""
    rows = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            table = list(csv.reader(handle, delimiter=";"))
        head = table[0]
        for position, values in enumerate(table[1:], start=1):
            if len(values) <= head.index("in-url") or not values[head.index("in-url")].strip():
                continue
            cells: dict[str, str] = {}
            for name, value in zip(head, values):
                if name.startswith("out-") and name[4:] in FIELDS and value and name[4:] not in cells:
                    cells[name[4:]] = value
            rows.append({"table": path.name.split("__")[0], "position": position,
                         "held_out": position % HELD_OUT_EVERY == 0, "url": values[head.index("in-url")],
                         **{f"ez_{f}": cells.get(f) for f in FIELDS}})
    return pl.DataFrame(rows, schema={"table": pl.Utf8, "position": pl.Int64, "held_out": pl.Boolean, "url": pl.Utf8,
                                      **{f"ez_{f}": pl.Utf8 for f in FIELDS}})


def ours(frame: pl.DataFrame, own_rules: bool = True) -> pl.DataFrame:
    """Shuku's fields for each URL, found as the EZproxy parser finds them."""
    parts = url_parts(frame.with_row_index("__row")).with_columns(
        host=pl.col("url_host").str.to_lowercase(), path=pl.col("url_path").replace("", "/"),
        query=pl.col("url_query").fill_null(""))
    hosts = parts.get_column("host").unique().drop_nulls().to_list()
    owner = {h: platform_of(h) for h in hosts}
    parts = parts.with_columns(platform=pl.col("host").replace_strict(owner, default=None, return_dtype=pl.Utf8))
    candidates = parts.select("__row", "platform", "host", "path", "query")
    found = qualify(candidates, own_rules=own_rules)
    # a URL of a form its platform's own rules know (written from the tuning rows), or of none they know
    known = qualify(candidates, general_rules=False).get_column("__row").to_list()
    return parts.join(found, on="__row", how="left").with_columns(known_form=pl.col("__row").is_in(known)).drop(
        "__row", "url_host", "url_path", "url_query")


def _norm(column: str, field: str) -> pl.Expr:
    expr = pl.col(column).map_elements(unquote, return_dtype=pl.Utf8).str.strip_chars()
    return (expr.str.to_lowercase() if field == "doi" else expr).replace("", None)


def agreement(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    exprs = []
    for f in FIELDS:
        a, b = _norm(f"ez_{f}", f), _norm(f, f)
        given = a.is_not_null() | b.is_not_null()
        exprs += [given.sum().alias(f"{f}_n"), (given & (a == b).fill_null(False)).sum().alias(f"{f}_ok")]
    return frame.group_by(by).agg(pl.len().alias("rows"), *exprs).sort(by)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=Path, default=PEERS)
    parser.add_argument("--rows", choices=["held-out", "tuning", "all"], default="held-out")
    parser.add_argument("--misses", choices=["held-out", "tuning", "all"], help="print the rows that disagree")
    parser.add_argument("--platform", action="append", help="only these tables (sd, wiley, …)")
    parser.add_argument("--general-only", action="store_true",
                        help="the general rules alone (scholarly.yaml), no platform's own: how they fare on "
                             "URLs of a platform nobody wrote rules for; tune them on the tuning rows this way")
    args = parser.parse_args()
    if not args.peers.is_dir():
        print(f"{args.peers}: no ezPAARSE platform tables here; nothing to measure.")
        return
    frame = ours(read_tables(args.peers), own_rules=not args.general_only)
    if args.platform:
        frame = frame.filter(pl.col("table").is_in(args.platform))
    pick = {"held-out": pl.col("held_out"), "tuning": ~pl.col("held_out"), "all": pl.lit(True)}
    if args.misses:
        for row in frame.filter(pick[args.misses]).iter_rows(named=True):
            wrong = [f"{f}: ezPAARSE {row[f'ez_{f}']!r} Shuku {row[f]!r}" for f in FIELDS
                     if (row[f"ez_{f}"] or None) and unquote(str(row[f"ez_{f}"])).lower() != unquote(str(row[f])).lower()
                     or (row[f] and not row[f"ez_{f}"])]
            if wrong:
                print(f"{row['table']}#{row['position']} {row['url'][:160]}\n    " + "\n    ".join(wrong))
        return
    chosen = frame.filter(pick[args.rows])
    table = agreement(chosen, ["table"])
    shown = ["rtype", "mime", "unitid", "doi", "print_identifier", "online_identifier", "title_id", "publication_date"]
    short = {"print_identifier": "print_id", "online_identifier": "online_id", "publication_date": "pub_date"}
    print(f"ezPAARSE platform tables: {frame.get_column('table').n_unique()} platforms, {frame.height} URLs; "
          f"rows measured: {args.rows} ({chosen.height}); agreement % (rows where either gives a value)")
    print(f"{'platform':<14}{'rows':>5}" + "".join(f"{short.get(f, f):>10}" for f in shown))

    def cell(ok: int, n: int) -> str:
        return f"{100 * ok / n:>10.0f}" if n else f"{'–':>10}"
    for row in table.iter_rows(named=True):
        print(f"{row['table']:<14}{row['rows']:>5}" + "".join(cell(row[f"{f}_ok"], row[f"{f}_n"]) for f in shown))
    total = agreement(chosen.with_columns(all=pl.lit("all")), ["all"]).row(0, named=True)
    print(f"{'all':<14}{total['rows']:>5}" + "".join(cell(total[f"{f}_ok"], total[f"{f}_n"]) for f in shown))
    for known, what in ((True, "a form its platform's rules know"), (False, "a form no rule of its platform knows")):
        part = chosen.filter(pl.col("known_form") == known)
        if part.height:
            share = agreement(part.with_columns(all=pl.lit("all")), ["all"]).row(0, named=True)
            shares = [f"{f} {cell(share[f'{f}_ok'], share[f'{f}_n']).strip()} %" for f in AIMS if share[f"{f}_n"]]
            print(f"  URLs of {what}: {part.height}; agree " + (", ".join(shares) or "on nothing (no field given)"))
    verdicts = []
    for f, aim in AIMS.items():
        share = total[f"{f}_ok"] / total[f"{f}_n"] if total[f"{f}_n"] else 0.0
        verdicts.append(f"{f} {100 * share:.1f} % (aim ≥ {100 * aim:.0f} %: {'met' if share >= aim else 'missed'})")
    print("; ".join(verdicts))


if __name__ == "__main__":
    main()
