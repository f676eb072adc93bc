"""Rules a contract cannot state, written once as SQL on DuckDB.

Each rule selects the offending rows of ``{rows}`` (the rows this run wrote) as one text
column ``at`` saying where the row is, never a personal value; `run_rule` turns that into
an unexpected count and a small sample.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import duckdb

from quality import reconciliation
from quality.suites import ERROR, WARN
from schemas.model import Contract, contract_for
from warehouse import pseudonym
from warehouse.lake.views import create_views, sql_string
from warehouse.library import Library, load_library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

SAFE_PII = ("none",)
PSEUDONYM = "patron_pid"
PSEUDONYM_VALUE = "^[0-9a-f]{64}$"
COUNTER_METRICS = ("metric_type", "usage_count", "source_file", "source_line")
READERS = ("staging.patron", "core.dim_patron")   # whose card numbers the privacy checks look for


@dataclass(frozen=True)
class SqlRule:
    """A hand-written check: ``offending(contract, rows)`` is SQL selecting ``at`` for each bad row.

    A privacy rule names the ``personal`` data it looks for instead; `scan_personal` runs them together.
    """

    name: str
    tables: tuple[str, ...]
    description: str
    severity: str
    offending: Callable[[Contract, str, dict], str] | None = None
    reads: tuple[str, ...] = ()      # other tables the rule's SQL reads
    personal: str | None = None      # "card", "email" or "phone"


def _quote(text: str) -> str:
    return sql_string(text)


def locator_columns(contract: Contract, exclude: str | None = None) -> list[str]:
    """Columns that say where a row is without showing anything personal (source line, key, time, code)."""
    names = [n for n in contract.column_names if n != exclude]
    if "source_line" in names:
        return [n for n in ("source_file", "source_line") if n in names]
    safe = [c for c in contract.columns if c.name in names and (c.pii in SAFE_PII or c.name == PSEUDONYM)
            and not c.physical_type.endswith("[]")]
    key = [k for k in contract.primary_key if k in {c.name for c in safe}]
    if key and len(key) == len(contract.primary_key):
        return key
    timed = [c.name for c in safe if c.required and c.physical_type in ("TIMESTAMP", "DATE")][:1]
    coded = [c.name for c in safe if c.required and c.physical_type in ("VARCHAR", "BIGINT") and c.name not in timed]
    return timed + coded[:2]


def locator_sql(contract: Contract, exclude: str | None = None) -> str:
    """``locator_columns`` as one text expression, e.g. ``gates/2025-09-01.csv:17``."""
    columns = locator_columns(contract, exclude)
    if not columns:
        return "'row ' || row_number() OVER ()"
    separator = ":" if columns == ["source_file", "source_line"] else " "
    return "concat_ws(" + _quote(separator) + ", " + ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns) + ")"


def re2(pattern: str) -> str:
    """A Python pattern for DuckDB's RE2, which has no look-around: a digit guard becomes a non-digit or an edge.

    Only used to test whether a value matches, where the two forms agree.
    """
    return (pattern.replace("(?<!\\d)", "(?:^|[^0-9])").replace("(?!\\d)", "(?:[^0-9]|$)"))


@lru_cache(maxsize=8)
def _library(path: Path, mtime_ns: int) -> Library:
    return load_library(path)


def library(settings: Settings) -> Library:
    """The library config, read once per file version (not once per table checked)."""
    path = Path(settings.library_config)
    return _library(path, path.stat().st_mtime_ns)


def rule_context(con: duckdb.DuckDBPyConnection, settings: Settings, contract: Contract, rows: str) -> dict:
    """What the rules need besides the rows: the card pattern and a test for a known reader's card number.

    A value matching card_number_pattern counts only when its keyed pseudonym is a reader's
    patron_pid: random ids (a 10-hex OPAC session id is all digits about 1 time in 100) match the
    pattern too. The readers are read on the first value to test, so a clean table never reads them.
    """
    pattern = library(settings).card_number_pattern
    card = re.compile(pattern)
    known: set[str] | None = None
    pseudonymiser = None

    def is_known_card_number(text: str) -> bool:
        nonlocal known, pseudonymiser
        if known is None:
            present = {f"{schema}.{name}" for schema, name in con.execute(
                "SELECT schema_name, view_name FROM duckdb_views() "
                "UNION SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
            create_views(con, settings, [contract_for(t) for t in READERS if t not in present])
            sources = [*READERS] + ([rows] if PSEUDONYM in contract.column_names else [])
            known = {pid for (pid,) in con.execute(
                " UNION ".join(f"SELECT {PSEUDONYM} FROM {source}" for source in sources)).fetchall() if pid}
            pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
        return any(pseudonymiser.pid(m.group(0)) in known for m in card.finditer(text))

    return {"card_number_pattern": pattern, "is_known_card_number": is_known_card_number}


def _personal_patterns(context: dict) -> dict[str, str]:
    return {"card": context["card_number_pattern"], "email": pseudonym.EMAIL.pattern, "phone": pseudonym.MOBILE.pattern}


def scan_personal(con: duckdb.DuckDBPyConnection, contract: Contract, rows: str, context: dict,
                  kinds: list[str], sample_size: int = 5) -> dict[str, tuple[int, list[str]]]:
    """Card numbers, e-mails and phone numbers in any text column, in ONE pass over ``rows``.

    One regular expression for all the kinds drops, in a single scan, every row where no text
    column could hold any of them. Only the few rows left get their 64-hex pseudonyms cut out
    (a patron_pid, alone or inside a session key, holds digit runs; cutting never makes a match)
    and are tested kind by kind. A card-like value counts only when ``is_known_card_number``
    confirms it. Returns (offending values, first few) per kind.
    """
    found = {kind: (0, []) for kind in kinds}
    texts = [c.name for c in contract.columns if c.physical_type == "VARCHAR"]
    if not texts or not kinds:
        return found
    patterns = {kind: re2(p) for kind, p in _personal_patterns(context).items() if kind in kinds}
    cut = {name: f"__text{i}" for i, name in enumerate(texts)}
    located = {name: locator_columns(contract, exclude=name) for name in texts}
    numbered = not all(located.values())
    read = [f'"{c}"' for c in dict.fromkeys([*(c for cols in located.values() for c in cols), *texts])]
    read += ["row_number() OVER () AS __row"] if numbered else []   # numbered before any row is dropped
    any_pattern = _quote("|".join(f"(?:{p})" for p in patterns.values()))
    prefilter = " OR ".join(f'regexp_matches("{name}", {any_pattern})' for name in texts)
    cutting = ", ".join(f"regexp_replace(\"{name}\", {_quote(PSEUDONYM_VALUE[1:-1])}, ' ', 'g') AS \"{cut[name]}\""
                        for name in texts)
    branches = []
    for name in texts:
        at = locator_sql(contract, exclude=name) if located[name] else "'row ' || __row"
        for kind, pattern in patterns.items():
            text = f'"{cut[name]}"' if kind == "card" else "NULL"
            branches.append(f"SELECT '{kind}' AS kind, {_quote(name + ' at ')} || {at} AS found_at, {text} AS text "
                            f"FROM hits WHERE regexp_matches(\"{cut[name]}\", {_quote(pattern)})")
    sql = (f"WITH hits AS MATERIALIZED (SELECT *, {cutting} FROM (SELECT {', '.join(read)} FROM {rows}) "
           f"WHERE {prefilter}) "
           f"SELECT kind, count(*), list(found_at ORDER BY found_at)[1:{int(sample_size)}], "
           f"list({{'found_at': found_at, 'text': text}} ORDER BY found_at) FILTER (WHERE kind = 'card') "
           f"FROM ({' UNION ALL '.join(branches)}) GROUP BY kind")
    for kind, count, sample, candidates in con.execute(sql).fetchall():
        if kind == "card":
            confirmed = [c["found_at"] for c in candidates if context["is_known_card_number"](c["text"])]
            count, sample = len(confirmed), confirmed[:sample_size]
        found[kind] = (int(count), list(sample or []))
    return found


def _item_key(alias: str) -> str:
    """An event's item as fact_loan pairs it: the FOLIO item UUID, else the Koha item number."""
    return f"coalesce({alias}.item_id, CAST({alias}.item_number AS VARCHAR))"


def _renewal_on_open_loan(contract: Contract, rows: str, context: dict) -> str:
    # History comes from the whole table: the issue may be in an earlier partition than the renewal.
    return (f"SELECT source_file || ':' || CAST(source_line AS VARCHAR) AS found_at FROM {rows} AS r "
            "WHERE r.event_type = 'renew' AND NOT EXISTS ("
            " SELECT 1 FROM staging.circulation_event AS i"
            f" WHERE {_item_key('i')} = {_item_key('r')} AND i.event_type = 'issue' AND i.event_at <= r.event_at"
            " AND NOT EXISTS (SELECT 1 FROM staging.circulation_event AS x"
            f"  WHERE {_item_key('x')} = {_item_key('r')} AND x.event_type = 'return'"
            "  AND x.event_at > i.event_at AND x.event_at < r.event_at))")


def _folio_item_resolved(contract: Contract, rows: str, context: dict) -> str:
    return (f"SELECT source_file || ':' || CAST(source_line AS VARCHAR) || ' item ' || item_id || ': ' "
            f"|| item_resolution AS found_at FROM {rows} "
            "WHERE item_resolution IN ('not_in_items_export', 'no_items_export')")


# Readers standing, in corridors and in the stacks: more than twice a zone's seats is beyond what
# the building holds, so a higher count is a counting error (a missed OUT, a doubled IN).
PHYSICAL_LIMIT_PER_SEAT = 2


def _occupancy_within_limit(contract: Contract, rows: str, context: dict) -> str:
    return (f"SELECT zone_code || ' ' || CAST(event_date AS VARCHAR) || ' ' || CAST(event_hour AS VARCHAR) || 'h: '"
            f" || CAST(occupancy_peak AS VARCHAR) || ' for ' || CAST(seat_capacity AS VARCHAR) || ' seats' AS found_at "
            f"FROM {rows} WHERE occupancy_peak < 0 OR occupancy_peak > {PHYSICAL_LIMIT_PER_SEAT} * seat_capacity")


# A reader may leave through a gate that missed their entry a moment before; ten minutes is
# more than any gate's clock drift or a queue at the turnstiles.
OUT_BEFORE_IN_TOLERANCE_MINUTES = 10


def _out_after_in(contract: Contract, rows: str, context: dict) -> str:
    return (f"WITH passes AS (SELECT * FROM {rows} WHERE result = 'PASS' AND patron_pid IS NOT NULL), "
            "firsts AS (SELECT patron_pid, event_date, min(event_at) FILTER (WHERE direction = 'IN') AS first_in, "
            " min(event_at) FILTER (WHERE direction = 'OUT') AS first_out FROM passes GROUP BY patron_pid, event_date) "
            "SELECT p.source_file || ':' || CAST(p.source_line AS VARCHAR) AS found_at "
            "FROM passes AS p JOIN firsts AS f ON f.patron_pid = p.patron_pid AND f.event_date = p.event_date "
            "WHERE p.direction = 'OUT' AND p.event_at = f.first_out AND (f.first_in IS NULL OR f.first_out < "
            f"f.first_in - INTERVAL {OUT_BEFORE_IN_TOLERANCE_MINUTES} MINUTE)")


def _return_after_issue(contract: Contract, rows: str, context: dict) -> str:
    return (f"SELECT 'loan ' || loan_id || ' returned ' || CAST(returned_at AS VARCHAR) || ', issued ' "
            f"|| CAST(issued_at AS VARCHAR) AS found_at FROM {rows} WHERE returned_at < issued_at")


def _counter_pairs(pairs: list[tuple[str, str]]) -> Callable[[Contract, str, dict], str]:
    """COUNTER items (one per title/platform/... and month) where a metric exceeds one it cannot exceed."""
    metrics = sorted({m for pair in pairs for m in pair})

    def offending(contract: Contract, rows: str, context: dict) -> str:
        item = [f'"{c.name}"' for c in contract.columns if c.name not in COUNTER_METRICS]
        sums = ", ".join(f"sum(usage_count) FILTER (WHERE metric_type = '{m}') AS \"{m}\"" for m in metrics)
        broken = " OR ".join(f'"{low}" > "{high}"' for low, high in pairs)
        shown = ", ".join(f"CASE WHEN \"{low}\" > \"{high}\" THEN '{low} ' || \"{low}\" || ' > {high} ' || \"{high}\" END"
                          for low, high in pairs)
        return (f"SELECT strftime(usage_month, '%Y-%m') || ' ' || report_id || ' ' "
                f"|| coalesce(title, database, platform, '') || ': ' || concat_ws(', ', {shown}) AS found_at "
                f"FROM (SELECT {', '.join(item)}, {sums} FROM {rows} GROUP BY ALL) WHERE {broken}")

    return offending


def _found_in(dimension: str, key: str, column: str, where: str = "true") -> Callable[[Contract, str, dict], str]:
    """Fact rows whose ``column`` is not a ``key`` of ``dimension``."""

    def offending(contract: Contract, rows: str, context: dict) -> str:
        return (f"SELECT {_quote(column + ' ')} || \"{column}\" || ' at ' || {locator_sql(contract)} AS found_at "
                f"FROM {rows} AS fact WHERE \"{column}\" IS NOT NULL AND ({where}) AND NOT EXISTS "
                f"(SELECT 1 FROM {dimension} AS dim WHERE dim.\"{key}\" = fact.\"{column}\")")

    return offending


STAGING_AND_CORE = "staging.*", "core.*"
COUNTER_TABLES = ("staging.counter_usage", "core.fact_counter_usage")
PATRON_FACTS = ("core.fact_loan", "core.fact_hold", "core.fact_gate_event", "core.fact_search",
                "core.fact_eresource_access")

RULES: tuple[SqlRule, ...] = (
    SqlRule("return_after_issue", ("core.fact_loan",),
            "No loan is returned before it was issued (returned_at ≥ issued_at).", ERROR, _return_after_issue),
    SqlRule("renewal_on_open_loan", ("staging.circulation_event",),
            "Every renewal follows an issue of the same item with no return in between (a warning: "
            "loans issued before the first loaded day have no issue here).", WARN, _renewal_on_open_loan,
            ("staging.circulation_event",)),
    SqlRule("folio_item_resolved", ("staging.circulation_event", "staging.hold"),
            "Every FOLIO item UUID is resolved to its barcode and call number by the items export beside the "
            "file (a warning: the event is loaded, flagged in item_resolution; deliver a newer folio_items.json "
            "and re-run the day).", WARN, _folio_item_resolved),
    SqlRule("occupancy_within_limit", ("marts.space_utilisation",),
            f"Occupancy is never below 0 nor above {PHYSICAL_LIMIT_PER_SEAT}× the zone's seats.", ERROR,
            _occupancy_within_limit),
    SqlRule("out_after_in", ("staging.gate_event",),
            f"A reader's first OUT of a day is not more than {OUT_BEFORE_IN_TOLERANCE_MINUTES} minutes before their "
            "first IN (a warning: a gate may miss an entry).", WARN, _out_after_in),
    SqlRule("counter_unique_within_total", COUNTER_TABLES,
            "For each item and month, Unique_Item_Requests ≤ Total_Item_Requests and "
            "Unique_Item_Investigations ≤ Total_Item_Investigations.", ERROR,
            _counter_pairs([("Unique_Item_Requests", "Total_Item_Requests"),
                            ("Unique_Item_Investigations", "Total_Item_Investigations")])),
    SqlRule("counter_requests_within_investigations", COUNTER_TABLES,
            "For each item and month, Total_Item_Requests ≤ Total_Item_Investigations "
            "(a request is also an investigation).", ERROR,
            _counter_pairs([("Total_Item_Requests", "Total_Item_Investigations")])),
    SqlRule("counter_titles_within_items", COUNTER_TABLES,
            "For each item and month, Unique_Title_Requests ≤ Unique_Item_Requests and "
            "Unique_Title_Investigations ≤ Unique_Item_Investigations (a title counted in a session had at least one "
            "of its items used).", ERROR,
            _counter_pairs([("Unique_Title_Requests", "Unique_Item_Requests"),
                            ("Unique_Title_Investigations", "Unique_Item_Investigations")])),
    SqlRule("counter_pr_matches_dr", COUNTER_TABLES,
            "For each platform and month with both a Platform Report and a Database Report, the PR's "
            "Total_Item_Requests and Total_Item_Investigations equal the sum of the DR's rows, within the share "
            "prDrTolerance of staging.counter_usage's contract.", ERROR, reconciliation.pr_matches_dr),
    SqlRule("loans_match_issue_events", ("core.fact_loan",),
            "Each day's loans are that day's issue events in staging.circulation_event: every issue starts one "
            "loan.", ERROR, reconciliation.loans_match_issues, ("staging.circulation_event",)),
    SqlRule("gate_balance_within_zone", ("core.fact_gate_event",),
            "For each zone and day, the running count of passages IN minus OUT stays at most "
            f"{PHYSICAL_LIMIT_PER_SEAT}× the zone's seats and at least minus the contract's tolerance: "
            "openingOccupancyTolerance readers already in at opening plus missedEntryShare of the day's entries.",
            ERROR,
            reconciliation.gate_balance_within_zone(PHYSICAL_LIMIT_PER_SEAT), ("core.dim_zone",)),
    SqlRule("utilisation_matches_passages", ("marts.space_utilisation",),
            "For each zone and day, the entries and exits add up to the passages IN and OUT of "
            "core.fact_gate_event.", ERROR, reconciliation.utilisation_matches_passages, ("core.fact_gate_event",)),
    SqlRule("item_in_dim_item", ("core.fact_loan",),
            "Every loan marked item_known has its item_number in core.dim_item.", ERROR,
            _found_in("core.dim_item", "item_number", "item_number", "fact.item_known"), ("core.dim_item",)),
    SqlRule("title_in_dim_title", ("core.fact_hold",),
            "Every hold's bib_id is a record of core.dim_title (a warning: the catalogue export may lag "
            "behind a new record).", WARN,
            _found_in("core.dim_title", "bib_id", "bib_id"), ("core.dim_title",)),
    SqlRule("gate_in_dim_gate", ("core.fact_gate_event",),
            "Every gate event's gate_code is a device of core.dim_gate.", ERROR,
            _found_in("core.dim_gate", "device_code", "gate_code"), ("core.dim_gate",)),
    SqlRule("patron_in_dim_patron", PATRON_FACTS,
            "Every patron_pid is a reader of core.dim_patron (a warning: the patron export may lag).", WARN,
            _found_in("core.dim_patron", "patron_pid", "patron_pid"), ("core.dim_patron",)),
    SqlRule("no_card_numbers", STAGING_AND_CORE,
            "No text value looks like a library card number (card_number_pattern of the library config).",
            ERROR, personal="card"),
    SqlRule("no_email_addresses", STAGING_AND_CORE, "No text value holds an e-mail address.", ERROR,
            personal="email"),
    SqlRule("no_phone_numbers", STAGING_AND_CORE, "No text value holds a mobile phone number.", ERROR,
            personal="phone"),
)


def _applies(rule: SqlRule, contract: Contract) -> bool:
    return any(t == contract.qualified_name or (t.endswith(".*") and t[:-2] == contract.layer) for t in rule.tables)


def rule_tables(rules: list[SqlRule]) -> list[str]:
    """The other tables the rules' SQL reads (dimensions for foreign keys; the card lookup adds its own)."""
    return [t for r in rules for t in r.reads]


def rules_for(contract: Contract) -> list[SqlRule]:
    """The hand-written rules of a table."""
    return [r for r in RULES if _applies(r, contract)]


def run_rule(con: duckdb.DuckDBPyConnection, rule: SqlRule, contract: Contract, rows: str, context: dict,
             sample_size: int = 5) -> tuple[int, list[str]]:
    """Run one rule on ``rows`` (a table or subquery): the number of offending rows and the first few."""
    if rule.personal:
        return scan_personal(con, contract, rows, context, [rule.personal], sample_size)[rule.personal]
    sql = rule.offending(contract, rows, context)
    count, sample = con.execute(
        f"SELECT count(*), list(found_at ORDER BY found_at)[1:{int(sample_size)}] FROM ({sql})").fetchall()[0]
    return int(count), list(sample or [])


def run_rules(con: duckdb.DuckDBPyConnection, rules: list[SqlRule], contract: Contract, rows: str, context: dict,
              sample_size: int = 5) -> list[tuple[SqlRule, int, list[str]]]:
    """Run a table's rules, the privacy rules in one shared scan: (rule, offending rows, first few) each."""
    personal = scan_personal(con, contract, rows, context, [r.personal for r in rules if r.personal], sample_size)
    return [(rule, *(personal[rule.personal] if rule.personal
                     else run_rule(con, rule, contract, rows, context, sample_size))) for rule in rules]

