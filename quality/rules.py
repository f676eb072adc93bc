"""Rules a contract cannot state, written once as SQL on DuckDB.

Each rule selects the offending rows of ``{rows}`` (the rows this run wrote) as one text
column ``at`` saying where the row is, never a personal value; `run_rule` turns that into
an unexpected count and a small sample.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import duckdb
from duckdb.sqltypes import BOOLEAN, VARCHAR

from quality.suites import ERROR, WARN
from warehouse import pseudonym
from warehouse.contracts import Contract
from warehouse.library import load_library
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

SAFE_PII = ("none",)
PSEUDONYM = "patron_pid"
PSEUDONYM_VALUE = "^[0-9a-f]{64}$"
COUNTER_METRICS = ("metric_type", "usage_count", "source_file", "source_line")


@dataclass(frozen=True)
class SqlRule:
    """A hand-written check: ``offending(contract, rows)`` is SQL selecting ``at`` for each bad row."""

    name: str
    tables: tuple[str, ...]
    description: str
    severity: str
    offending: Callable[[Contract, str, dict], str]
    reads: tuple[str, ...] = ()      # other tables the rule's SQL reads


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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


KNOWN_CARD_FUNCTION = "is_known_card_number"


def register_card_lookup(con: duckdb.DuckDBPyConnection, settings: Settings, contract: Contract, rows: str) -> dict:
    """Add a SQL function telling whether a text holds the card number of a known reader; returns the rule context.

    A value matching card_number_pattern counts only when its keyed pseudonym is a reader's
    patron_pid: random ids (a 10-hex OPAC session id is all digits about 1 time in 100) match the pattern too.
    """
    pattern = load_library(settings.library_config).card_number_pattern
    pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
    sources = ["staging.patron", "core.dim_patron"] + ([rows] if PSEUDONYM in contract.column_names else [])
    known = {pid for (pid,) in con.execute(
        " UNION ".join(f"SELECT {PSEUDONYM} FROM {source}" for source in sources)).fetchall() if pid}
    card = re.compile(pattern)

    def is_known_card_number(text: str) -> bool:
        return any(pseudonymiser.pid(m.group(0)) in known for m in card.finditer(text))

    try:  # the known readers may have changed since the last registration on this connection
        con.remove_function(KNOWN_CARD_FUNCTION)
    except duckdb.InvalidInputException:
        pass
    con.create_function(KNOWN_CARD_FUNCTION, is_known_card_number, [VARCHAR], BOOLEAN, side_effects=False)
    return {"card_number_pattern": pattern, "card_confirmed": KNOWN_CARD_FUNCTION}


def _personal(kind: str) -> Callable[[Contract, str, dict], str]:
    """Offending rows for one kind of personal data in any text column (64-hex pseudonyms excepted)."""

    def offending(contract: Contract, rows: str, context: dict) -> str:
        pattern = {"card": context["card_number_pattern"], "email": pseudonym.EMAIL.pattern,
                   "phone": pseudonym.MOBILE.pattern}[kind]
        parts = []
        for col in contract.columns:
            if col.physical_type != "VARCHAR":
                continue
            # Pseudonyms are cut out first: a 64-hex patron_pid (alone or inside a session key) holds digit runs.
            text = f"regexp_replace(\"{col.name}\", {_quote(PSEUDONYM_VALUE[1:-1])}, ' ', 'g')"
            matched = f"regexp_matches({text}, {_quote(re2(pattern))})"
            if kind == "card":
                # CASE, so the Python lookup runs only on the few values the pattern matched.
                matched = f"CASE WHEN {matched} THEN {context['card_confirmed']}({text}) ELSE false END"
            parts.append(f"SELECT {_quote(col.name)} || ' at ' || {locator_sql(contract, exclude=col.name)} "
                         f"AS found_at FROM {rows} WHERE {matched}")
        return " UNION ALL ".join(parts) or "SELECT NULL AS found_at WHERE false"

    return offending


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
PATRON_FACTS = ("core.fact_loan", "core.fact_gate_event", "core.fact_search", "core.fact_eresource_access")

RULES: tuple[SqlRule, ...] = (
    SqlRule("return_after_issue", ("core.fact_loan",),
            "No loan is returned before it was issued (returned_at ≥ issued_at).", ERROR, _return_after_issue),
    SqlRule("counter_unique_within_total", COUNTER_TABLES,
            "For each item and month, Unique_Item_Requests ≤ Total_Item_Requests and "
            "Unique_Item_Investigations ≤ Total_Item_Investigations.", ERROR,
            _counter_pairs([("Unique_Item_Requests", "Total_Item_Requests"),
                            ("Unique_Item_Investigations", "Total_Item_Investigations")])),
    SqlRule("counter_requests_within_investigations", COUNTER_TABLES,
            "For each item and month, Total_Item_Requests ≤ Total_Item_Investigations "
            "(a request is also an investigation).", ERROR,
            _counter_pairs([("Total_Item_Requests", "Total_Item_Investigations")])),
    SqlRule("item_in_dim_item", ("core.fact_loan",),
            "Every loan marked item_known has its item_number in core.dim_item.", ERROR,
            _found_in("core.dim_item", "item_number", "item_number", "fact.item_known"), ("core.dim_item",)),
    SqlRule("gate_in_dim_gate", ("core.fact_gate_event",),
            "Every gate event's gate_code is a device of core.dim_gate.", ERROR,
            _found_in("core.dim_gate", "device_code", "gate_code"), ("core.dim_gate",)),
    SqlRule("patron_in_dim_patron", PATRON_FACTS,
            "Every patron_pid is a reader of core.dim_patron (a warning: the patron export may lag).", WARN,
            _found_in("core.dim_patron", "patron_pid", "patron_pid"), ("core.dim_patron",)),
    SqlRule("no_card_numbers", STAGING_AND_CORE,
            "No text value looks like a library card number (card_number_pattern of the library config).",
            ERROR, _personal("card")),
    SqlRule("no_email_addresses", STAGING_AND_CORE, "No text value holds an e-mail address.", ERROR,
            _personal("email")),
    SqlRule("no_phone_numbers", STAGING_AND_CORE, "No text value holds a mobile phone number.", ERROR,
            _personal("phone")),
)


def _applies(rule: SqlRule, contract: Contract) -> bool:
    return any(t == contract.qualified_name or (t.endswith(".*") and t[:-2] == contract.layer) for t in rule.tables)


def rule_tables(rules: list[SqlRule]) -> list[str]:
    """The other tables the rules read: the readers for the card lookup, the dimensions for foreign keys."""
    if not rules:
        return []
    return ["staging.patron", "core.dim_patron", *(t for r in rules for t in r.reads)]


def rules_for(contract: Contract) -> list[SqlRule]:
    """The hand-written rules of a table."""
    return [r for r in RULES if _applies(r, contract)]


def run_rule(con: duckdb.DuckDBPyConnection, rule: SqlRule, contract: Contract, rows: str, context: dict,
             sample_size: int = 5) -> tuple[int, list[str]]:
    """Run one rule on ``rows`` (a table or subquery): the number of offending rows and the first few."""
    sql = rule.offending(contract, rows, context)
    count, sample = con.execute(
        f"SELECT count(*), list(found_at ORDER BY found_at)[1:{int(sample_size)}] FROM ({sql})").fetchall()[0]
    return int(count), list(sample or [])

