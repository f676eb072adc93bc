"""The interface assets use for their checks: their Dagster specs, and running them.

Asset factories declare ``check_specs(contract)`` on every asset and yield the results of
``evaluate(...)`` after writing, so the checks of a table are defined in one place: the
rules its contract states (validated by Great Expectations on pandas, one validation per
table and run), its freshness SLA and the hand-written rules of `quality.rules` (SQL on
DuckDB), listed by `quality.plan`. Each evaluation also rewrites the table's page of the Data
Docs site. ``SHUKU_QUALITY_CHECKS=off`` leaves them out of the definitions (benchmarks only).
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache
from typing import Iterable

import dagster as dg
import duckdb
import polars as pl

from quality.datadocs import update_docs
from quality.freshness import check_freshness, freshness_rule, library_today
from quality.plan import checks_enabled, planned_checks
from quality.results import CheckOutcome, partition_label, write_results
from quality.rules import (PSEUDONYM, SAFE_PII, library, locator_columns, rule_context, rule_tables, rules_for,
                           run_rules)
from quality.suites import ERROR, ContractExpectation, ExpectationResult, contract_expectations, validate_frame, within
from schemas.model import Contract, contract_for
from schemas.vocabulary import DATA_LAYERS
from warehouse.lake.paths import partition_date, partition_file, partition_files
from warehouse.lake.views import compute_connection, create_views, partition_filter, sql_string
from warehouse.pseudonym import Pseudonymiser
from warehouse.settings import Settings

SAMPLE_SIZE = 5


def checked_against(contract: Contract) -> list[str]:
    """Other tables the table's checks compare it with (its foreign keys' dimensions): they must be
    built before the table, or a first run checks against an empty dimension."""
    if not checks_enabled() or contract.layer not in DATA_LAYERS:
        return []
    return sorted({t for rule in rules_for(contract) for t in rule.reads} - {contract.qualified_name})


def check_specs(contract: Contract) -> list[dg.AssetCheckSpec]:
    """The Dagster asset checks of a table; error-severity checks block what is downstream."""
    if not checks_enabled():
        return []
    key = dg.AssetKey([contract.layer, contract.table])
    return [dg.AssetCheckSpec(name=c.name, asset=key, description=c.description, blocking=c.severity == ERROR)
            for c in planned_checks(contract)]


def partition_days(contract: Contract, partition_keys: list[str]) -> list[str]:
    """The partition folders' dates for Dagster partition keys (a month is its first day)."""
    return sorted({partition_date(key, contract.partitioning).isoformat() for key in partition_keys})


def rows_written(contract: Contract, partition_keys: list[str] | None) -> str:
    """SQL for the rows a run wrote: its partitions of the table, or the whole table."""
    part = contract.partition_column
    if part is None or not partition_keys:
        return contract.qualified_name
    days = partition_days(contract, partition_keys)
    return f"(SELECT * FROM {contract.qualified_name} WHERE {partition_filter(contract, days)})"


def partition_rows(settings: Settings, contract: Contract, partition_keys: list[str] | None,
                   pending: dict | None = None) -> dict[str, int]:
    """Rows of each partition the run wrote, from the Parquet footers (no scan); of the files
    ``pending`` (partition key → file) when the run's partitions are not published yet.

    Only partitions with a file count: a day without landing files writes nothing, while a day
    whose files held no loadable row writes an empty partition, which a row count rule catches.
    """
    import pyarrow.parquet as pq

    part = contract.partition_column
    if pending:
        return {f"{part.name}={partition_days(contract, [key])[0]}": pq.read_metadata(path).num_rows
                for key, path in pending.items()}
    if partition_keys:
        files = {day: partition_file(settings, contract, day) for day in partition_days(contract, partition_keys)}
    else:
        files = partition_files(settings, contract)
    return {f"{part.name}={day}": pq.read_metadata(path).num_rows for day, path in files.items() if path.exists()}


def _row_count_outcome(settings: Settings, contract: Contract, result: ExpectationResult,
                       partition_keys: list[str] | None, pending: dict | None = None) -> tuple[bool, str, int, list[str]]:
    """(success, observed, unexpected count, sample) of a row count rule.

    GX counts the whole batch, i.e. every partition of the run together; for a partitioned
    table the rule holds per partition, so each partition's count is held to the same bounds.
    """
    if contract.partition_column is None:
        # Counted chunk by chunk for a long table: the sum is held to the bounds, not each chunk.
        rows = int(result.observed or 0)
        success = within(rows, result.rule.kwargs)
        shown = f"{rows:,} rows"
        return success, shown, 0 if success else 1, [] if success else [shown]
    counts = partition_rows(settings, contract, partition_keys, pending)
    if not counts:
        return True, "no partition written", 0, []
    bad = {folder: n for folder, n in counts.items() if not within(n, result.rule.kwargs)}
    fewest = min(counts, key=counts.get)
    observed = f"{len(counts)} partition(s), fewest {counts[fewest]:,} rows ({fewest})"
    return not bad, observed, len(bad), [f"{folder}: {n:,} rows" for folder, n in sorted(bad.items())][:SAMPLE_SIZE]


def _frame(con, columns: list[str], rows: str) -> "pandas.DataFrame":  # noqa: F821
    """The columns GX needs as pandas, through Arrow (several times faster than ``.df()`` for text).

    Integers with nulls become float64, not pandas' nullable Int64: GX compares Int64 value by
    value in Python and float64 in one vectorised step.
    """
    selected = ", ".join(f'"{c}"' for c in columns) or "1 AS row"
    return con.sql(f"SELECT {selected} FROM {rows}").to_arrow_table().to_pandas()


def _shown(value) -> str:
    value = value.item() if hasattr(value, "item") else value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(empty)"
    # An integer column with nulls reaches GX as float64: show 0, not 0.0.
    return str(int(value) if isinstance(value, float) and value.is_integer() else value)


def _sample(contract: Contract, result: ExpectationResult, locator: list[str]) -> list[str]:
    """Where each offending row is, and its value unless the column is personal (patron_pid is a pseudonym)."""
    separator = ":" if locator == ["source_file", "source_line"] else " "
    shown = []
    for row in result.unexpected_rows:
        where = separator.join(_shown(row.get(c)) for c in locator if c in row)
        values = []
        for name in result.rule.columns:
            col = contract.column(name)
            personal = col.pii not in SAFE_PII and name != PSEUDONYM
            values.append(f"{name}=[personal, not shown]" if personal else f"{name}={_shown(row.get(name))}")
        shown.append(" ".join(filter(None, [where, *values])))
    return shown


@lru_cache(maxsize=4)
def _database(settings: Settings) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process and home: opening one costs ~25 ms of CPU, a cursor on it nothing."""
    return compute_connection(settings, [])


def _connection(settings: Settings, tables: list[str], pending: tuple[Contract, dict] | None = None
                ) -> duckdb.DuckDBPyConnection:
    """A cursor on the process's database with fresh views of ``tables`` (their files may have changed);
    with ``pending`` (a table, partition key → file), that table's view reads those files alone."""
    con = _database(settings).cursor()
    create_views(con, settings, [contract_for(t) for t in dict.fromkeys(tables)])
    if pending:
        contract, files = pending
        columns = ", ".join(f'"{c.name}"' for c in contract.columns)
        listed = ", ".join(sql_string(f) for f in files.values())
        part = contract.partition_column
        # Staged files sit in their partition's folder: hive partitioning gives the column back.
        hive = (f"hive_partitioning = true, hive_types = {{'{part.name}': {part.physical_type}}}" if part is not None
                else "hive_partitioning = false")
        con.execute(f"CREATE OR REPLACE VIEW {contract.qualified_name} AS SELECT {columns} FROM read_parquet("
                    f"[{listed}], {hive}, union_by_name = true)")
    return con


def _close(con: duckdb.DuckDBPyConnection) -> None:
    """Drop every view the checks made, so the next table's checks never read one made before its files."""
    for schema, view in con.execute("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall():
        con.execute(f'DROP VIEW IF EXISTS "{schema}"."{view}"')
    con.close()


# A run over many partitions (a backfill) validates them this many at a time, so that the frame
# handed to GX stays the size of a few days whatever the range: memory stays flat as it grows.
CHUNK_PARTITIONS = 7


def partition_chunks(contract: Contract, partition_keys: list[str] | None,
                     expectations: list[ContractExpectation]) -> list[list[str] | None]:
    """The partition keys in groups validated one after another; one group (all of them) when the
    table is not partitioned, or when a uniqueness rule's key lacks the partition column (rows of
    two partitions could then collide, which only one batch would see)."""
    part = contract.partition_column
    if not partition_keys or part is None or len(partition_keys) <= CHUNK_PARTITIONS:
        return [partition_keys]
    if any(e.kind == "unique" and part.name not in e.columns for e in expectations):
        return [partition_keys]
    keys = sorted(partition_keys)
    return [keys[i:i + CHUNK_PARTITIONS] for i in range(0, len(keys), CHUNK_PARTITIONS)]


# A table that is not partitioned (a core fact grows with the year) is streamed from DuckDB this
# many rows at a time for its row-by-row rules; a uniqueness rule is validated on its key columns
# alone, over the whole table, since two rows of different chunks could collide.
CHUNK_ROWS = 1_000_000


def _batches(con, contract: Contract, expectations: list[ContractExpectation], partition_keys: list[str] | None,
             locator: list[str]):
    """(frame, located, rules) to validate one after another: the frame GX gets, a callable for the
    same rows with the locator columns, and the names of the rules to validate on it (None: all)."""
    needed = list(dict.fromkeys(c for e in expectations for c in e.columns))
    if contract.partition_column is not None and partition_keys:
        for keys in partition_chunks(contract, partition_keys, expectations):
            rows = rows_written(contract, keys)
            yield (_frame(con, needed, rows),
                   lambda rows=rows: _frame(con, list(dict.fromkeys(needed + locator)), rows), None)
        return
    rows = rows_written(contract, partition_keys)
    if con.sql(f"SELECT count(*) FROM {rows}").fetchall()[0][0] <= CHUNK_ROWS:
        yield _frame(con, needed, rows), lambda: _frame(con, list(dict.fromkeys(needed + locator)), rows), None
        return
    unique = [e for e in expectations if e.kind == "unique"]
    by_row = [e for e in expectations if e.kind != "unique"]
    if by_row:
        columns = list(dict.fromkeys([c for e in by_row for c in e.columns] + locator))
        selected = ", ".join(f'"{c}"' for c in columns) or "1 AS row"
        # A cursor of its own: a stream left unfinished (a validation failed) must not hold `con`.
        stream = con.cursor()
        try:
            for batch in stream.sql(f"SELECT {selected} FROM {rows}").to_arrow_reader(CHUNK_ROWS):
                frame = batch.to_pandas()
                yield frame, lambda frame=frame: frame, frozenset(e.name for e in by_row)
        finally:
            stream.close()
    for rule in unique:
        key = list(rule.columns)
        yield (_frame(con, key, rows), lambda key=key: _frame(con, list(dict.fromkeys(key + locator)), rows),
               frozenset([rule.name]))


def _validate_in_chunks(con, contract: Contract, expectations: list[ContractExpectation],
                        partition_keys: list[str] | None, locator: list[str]) -> list[ExpectationResult]:
    """Validate the run's rows chunk by chunk (see `partition_chunks`, `CHUNK_ROWS`) and add the
    results up per rule: it holds when it held in every chunk; counts are summed, samples kept
    from the first chunks."""
    merged: dict[str, ExpectationResult] = {}
    every = {e.name for e in contract_expectations(contract)}
    chosen = frozenset(e.name for e in expectations)
    for frame, located, only in _batches(con, contract, expectations, partition_keys, locator):
        if chosen != every:        # a subset (the blocking rules of an audit)
            only = chosen if only is None else only & chosen
            if not only:
                continue
        results = validate_frame(contract, frame, locator, SAMPLE_SIZE, located=located, only=only)
        del frame
        for result in results:
            seen = merged.get(result.rule.name)
            if seen is None:
                merged[result.rule.name] = result
                continue
            seen.success = seen.success and result.success
            seen.element_count += result.element_count
            seen.unexpected_count += result.unexpected_count
            seen.unexpected_rows = (seen.unexpected_rows + result.unexpected_rows)[:SAMPLE_SIZE]
            if isinstance(seen.observed, int) and isinstance(result.observed, int):
                seen.observed += result.observed
    order = [e.name for e in expectations]
    return sorted(merged.values(), key=lambda r: order.index(r.rule.name))


def run_checks(contract: Contract, settings: Settings, *, run_id: str, partition_keys: list[str] | None,
               now: dt.datetime | None = None, pending: dict | None = None,
               audited: list[CheckOutcome] | None = None) -> list[CheckOutcome]:
    """Run every check of the table on the rows this run wrote and record them in meta.quality_results.

    ``now`` replaces the clock for the freshness check (tests). ``pending`` (partition key, or None
    for a whole table, → staged file): run only the blocking (error-severity) checks, on those
    files before they are published, and record nothing (see `audit`). ``audited``: the outcomes
    of that audit on exactly the partitions now published, which are not computed again.
    """
    if contract.layer not in DATA_LAYERS:
        return []
    done = {o.check_name for o in audited or []}
    if pending:
        blocking = lambda checks: [c for c in checks if c.severity == ERROR]   # noqa: E731
    else:
        blocking = lambda checks: [c for c in checks if c.name not in done]    # noqa: E731
    expectations = blocking(contract_expectations(contract))
    fresh = None if pending else freshness_rule(contract)     # the table's age, not the new rows' validity
    rules = blocking(rules_for(contract))
    if pending:
        partition_keys = [k for k in pending if k is not None] or None
    outcomes = []
    con = _connection(settings, [contract.qualified_name, *rule_tables(rules)],
                      (contract, pending) if pending else None)
    try:
        rows = rows_written(contract, partition_keys)
        if expectations:
            locator = locator_columns(contract)
            for result in _validate_in_chunks(con, contract, expectations, partition_keys, locator):
                rule = result.rule
                if rule.kind == "row_count":
                    success, observed, count, sample = _row_count_outcome(settings, contract, result, partition_keys,
                                                                          pending)
                else:
                    success, count, sample = result.success, result.unexpected_count, _sample(contract, result, locator)
                    observed = f"{result.unexpected_count:,} of {result.element_count:,} rows"
                outcomes.append(CheckOutcome(
                    table_name=contract.qualified_name, check_name=rule.name, expectation=rule.expectation,
                    column_name=", ".join(rule.columns) or None, severity=rule.severity, success=success,
                    observed_value=observed, unexpected_count=count, sample=sample))
        if fresh:
            success, observed, sample = check_freshness(con, contract, fresh, library_today(settings, now))
            outcomes.append(CheckOutcome(
                table_name=contract.qualified_name, check_name=fresh.name, expectation="sla", column_name=fresh.column,
                severity=fresh.severity, success=success, observed_value=observed, unexpected_count=0 if success else 1,
                sample=[] if success else sample))
        context = rule_context(con, settings, contract, rows) if rules else {}
        for rule, count, sample in run_rules(con, rules, contract, rows, context, SAMPLE_SIZE):
            outcomes.append(CheckOutcome(
                table_name=contract.qualified_name, check_name=rule.name, expectation="sql", column_name=None,
                severity=rule.severity, success=count == 0, observed_value=f"{count:,} offending",
                unexpected_count=count, sample=sample))
    finally:
        _close(con)
    _scrub_samples(settings, outcomes)
    if pending:
        return outcomes
    if audited:
        order = [c.name for c in planned_checks(contract)]
        outcomes = sorted([*audited, *outcomes], key=lambda o: order.index(o.check_name))
    write_results(settings, run_id, partition_keys, outcomes)
    update_docs(settings, contract.qualified_name, run_id, partition_label(partition_keys), outcomes)
    return outcomes


def audit(contract: Contract, settings: Settings, pending: dict, *, run_id: str) -> list[CheckOutcome]:
    """The blocking (error-severity) checks on partitions written but not yet published (``pending``:
    partition key, or None for a whole table, → staged file). The stored partitions are replaced
    only when all of them pass; nothing is recorded here (the stored data did not change): the
    outcomes are recorded with the table's other checks once published (`evaluate`, ``audited``)."""
    if not checks_enabled() or not pending:
        return []
    return run_checks(contract, settings, run_id=run_id, partition_keys=None, pending=pending)


def _scrub_samples(settings: Settings, outcomes: list[CheckOutcome]) -> None:
    """Last safety net: a value shown in a sample never carries a card number, e-mail or phone number.

    Columns without personal data can still hold one by mistake (what the privacy checks look for).
    """
    if not any(o.sample for o in outcomes):
        return
    pattern = library(settings).card_number_pattern
    pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
    for outcome in outcomes:
        if outcome.sample:
            outcome.sample = pseudonymiser.scrub(pl.Series(outcome.sample, dtype=pl.Utf8), pattern).to_list()


def evaluate(contract: Contract, settings: Settings, *, run_id: str, partition_keys: list[str] | None,
             now: dt.datetime | None = None, audited: list[CheckOutcome] | None = None) -> Iterable[dg.AssetCheckResult]:
    """Run the table's checks on what this run wrote (its partitions, or the whole table); ``now`` for
    tests; ``audited``: outcomes of `audit` on exactly these partitions, reused."""
    if not checks_enabled():
        return []
    key = dg.AssetKey([contract.layer, contract.table])
    label = partition_label(partition_keys)
    return [dg.AssetCheckResult(
        asset_key=key, check_name=o.check_name, passed=o.success,
        severity=dg.AssetCheckSeverity.ERROR if o.severity == ERROR else dg.AssetCheckSeverity.WARN,
        metadata={"observed": o.observed_value, "unexpected_count": o.unexpected_count, "partitions": label,
                  "sample": dg.MetadataValue.json(o.sample)})
        for o in run_checks(contract, settings, run_id=run_id, partition_keys=partition_keys, now=now, audited=audited)]
