"""The perturbation oracle of the column lineage (tests/test_lineage_perturbation.py says what it
holds the trace to): a model on an in-memory DuckDB over input frames that can be swapped, the
ways one input column is changed, the inputs grown where two tiny days cannot show a dependency,
and the comparison of what moved each published column with what its trace names."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import duckdb
import polars as pl
import sqlglot
from sqlglot import exp

from assets.marts_python import PythonMart
from lineage.columns import ModelLineage, sql_lineage
from lineage.mappings import declared_edges
from schemas.model import contract_for

START = dt.date(2025, 9, 1)
# The row identity of a table whose contract declares no primary key (its grain, as its contract
# describes it); the facts of raw events have none and are compared as bags.
GRAIN = {
    "marts.key_figures": ("year", "month"),
    "marts.space_utilisation": ("event_date", "event_hour", "branch_code", "zone_code"),
    "marts.occupancy_heatmap": ("zone_code", "weekday", "event_hour"),
    "marts.circulation_top_monthly": ("loan_month", "scope", "scope_value", "bib_id"),
    "marts.acquisition_demand": ("demand_kind", "query_text", "bib_id"),
    "marts.subject_borrowing_decline": ("loan_month", "comparison", "discipline_code"),
    "marts.desk_staffing": ("branch_code", "weekday", "event_hour"),
    "marts.eresource_top_monthly": ("usage_month", "level", "name", "platform"),
    "marts.reader_profile": ("patron_pid",),
    "marts.also_borrowed": ("bib_id", "also_bib_id"),
    "marts.seat_demand_forecast": ("period", "branch_code", "forecast_date", "event_hour"),
    "marts.seat_demand_backtest": ("origin_date", "branch_code", "method"),
}
FAST = ("marts.key_figures",)
# Inputs grown for models whose dependencies two tiny days cannot show: the same rows again some
# days away (every row, or every other row, so the copies differ from the originals), with every
# date and time moved. A second week repeats each weekday (desk staffing takes a peak over the
# days of a weekday); an August borrowed twice as busily as September makes September a fall (the
# borrowing decline compares loans per open day with the month before), each August day by other
# readers, so that which month a loan falls in decides who borrowed then; holds spread over six
# weeks reach past the 30-day hold window, six in it for every hold, so that a title of two copies
# is held at three holds per copy and one copy fewer changes the copies to buy. The SQL under test
# is unchanged.
AUGUST = tuple((-day, 1) for day in range(1, 32))
AUGUST_READERS = tuple((-day, 1, pl.col("patron_pid") + f"~{day}") for day in range(1, 32))
# September's title reports again as a standard view of every other row (TR_B1): a platform
# whose title report is renamed away leaves its view, so the platform decides which report counts.
SEPTEMBER_VIEW = ((0, 2, pl.col("report_id").replace({"TR": "TR_B1"})),)
# Visits and loans again in the exam week of January 2026 (the reader profiles' exam-season share).
EXAMS = ((126, 2),)
# An August of COUNTER views without their master reports, two title views of the same rows (a tie
# the report's name breaks, so a release or an access method that moves some of one view's rows
# decides which is the basis) and a third of text and data mining, kept apart unless its access
# method is Regular.
VIEWS = ((-31, 2, pl.col("report_id").replace({"TR": "TR_J3", "DR": "DR_D1"})),
         (-31, 2, pl.col("report_id").replace({"TR": "TR_B1", "DR": "DR_D1"})),
         (-31, 2, pl.col("report_id").replace({"TR": "TR_J3", "DR": "DR_D1"}), pl.lit("TDM").alias("access_method")))
# August's platform totals, and each platform again under another name with the same requests: a tie
# in the ranking that the investigations break.
PLATFORM_TIES = ((-31, 1), (-31, 1, pl.col("platform") + "~"))
# Three weeks of hourly occupancy: the forecast fits a weekday profile and back-tests a week ahead.
WEEKS = tuple((days, 1) for days in range(2, 22, 2))
MORE_ROWS: dict[str, dict[str, tuple[tuple, ...]]] = {
    "marts.seat_demand_forecast": {"marts.space_utilisation": WEEKS},
    "marts.seat_demand_backtest": {"marts.space_utilisation": WEEKS},
    "marts.eresource_top_monthly": {"core.fact_counter_usage": VIEWS, "marts.eresource_platform_monthly": PLATFORM_TIES},
    "marts.reader_profile": {"core.fact_loan": EXAMS, "core.fact_gate_event": EXAMS},
    "marts.desk_staffing": {"core.fact_loan": ((7, 2),), "core.fact_gate_event": ((7, 2),)},
    "marts.subject_borrowing_decline": {"core.fact_loan": AUGUST_READERS, "core.fact_search": AUGUST,
                                        "core.fact_counter_usage": ((-31, 1), *SEPTEMBER_VIEW)},
    "marts.acquisition_demand": {"core.fact_hold": tuple((-days, 1) for days in (5, 10, 15, 20, 25, 40))},
}
# Backgrounds tried per model (each a perturbation of one named input, under which every
# perturbation of a not yet shown input runs): a bound on the search, not on the verdict (an
# input it could not show stays a mismatch).
BACKGROUND_RUNS = 600
SETTING_ROWS = 10            # a table this small holds settings (a standard, a list of classes)



def inputs_of(sql: str) -> list[str]:
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    ctes = {c.alias for c in tree.find_all(exp.CTE)}
    return sorted({f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db and t.name not in ctes})


def _perturbations(series: pl.Series, literals: tuple[str, ...] = ()) -> list[tuple[str, pl.Series]]:
    """Ways to change one column so that a real dependency cannot hide: permuted, shifted, a suffix,
    a flipped flag, NULL in every row or every other one, NULLs filled, and (text) every other row
    set to a string the SQL compares with, so a code can become one the tiny data lacks."""
    n, dtype = len(series), series.dtype
    out = []
    if n > 1:
        out.append(("reversed", series.reverse()))
        out.append(("rotated", pl.concat([series.tail(1), series.head(n - 1)])))
    filler = None
    if dtype.is_numeric():
        out += [("plus one", series + 1), ("doubled", series * 2), ("negated", -series)]
        filler = 1
    elif dtype == pl.Date:
        out += [("next day", series + dt.timedelta(days=1)), ("day before", series - dt.timedelta(days=1)),
                ("every other the first day", pl.Series(series.name, [START if i % 2 else v for i, v in enumerate(series)],
                                                        dtype=dtype))]
        filler = START
    elif isinstance(dtype, pl.Datetime):
        out += [("next day", series + dt.timedelta(days=1)), ("day before", series - dt.timedelta(days=1)),
                ("hour later", series + dt.timedelta(hours=1))]
        filler = dt.datetime.combine(START, dt.time(10))
    elif dtype == pl.Boolean:
        out.append(("negated", ~series))
        filler = True
    elif dtype in (pl.String, pl.Categorical):
        out.append(("suffixed", series.cast(pl.String) + "~"))
        out.append(("first half suffixed", (series.head(n // 2).cast(pl.String) + "~").append(series.tail(n - n // 2).cast(pl.String))))
        filler = "x"
        for literal in literals:
            out.append((f"every other {literal!r}", pl.Series(series.name, [literal if i % 2 else v
                                                                             for i, v in enumerate(series)])))
    out.append(("null", pl.Series(series.name, [None] * n, dtype=dtype)))
    # NULL in the first or the last half of the rows (in the order of the lake: by time), so that
    # what only the first or last day decides (a span of dates) can move.
    out.append(("first half null", pl.Series(series.name, [None] * (n // 2), dtype=dtype).append(series.tail(n - n // 2))))
    out.append(("last half null", series.head(n - n // 2).append(pl.Series(series.name, [None] * (n // 2), dtype=dtype))))
    out.append(("every third null", pl.Series(series.name, [None if i % 3 == 0 else v for i, v in enumerate(series)],
                                              dtype=dtype)))
    if series.drop_nulls().len():
        # one value in every row: ties everywhere, so what only breaks a tie can show over it
        out.append(("all the same", pl.Series(series.name, [series.drop_nulls()[0]] * n, dtype=dtype)))
    out.append(("every other null", pl.Series(series.name, [v if i % 2 else None for i, v in enumerate(series)],
                                              dtype=dtype)))
    if filler is not None and series.null_count():
        out.append(("nulls filled", series.fill_null(filler)))
    return out


def _moved(frame: pl.DataFrame, days: int, every: int, *changes: pl.Expr) -> pl.DataFrame:
    """Every ``every``-th row of ``frame`` with its dates and times ``days`` later, and ``changes``
    applied (a COUNTER report renamed, a reader made another)."""
    shifted = [pl.col(c) + dt.timedelta(days=days) for c, t in frame.schema.items()
               if t == pl.Date or isinstance(t, pl.Datetime)]
    return frame.gather_every(every).with_columns(shifted).with_columns(*changes)


def grown(name: str, frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The model's input frames with the rows ``MORE_ROWS`` adds for it."""
    more = MORE_ROWS.get(name, {})
    return {t: pl.concat([f, *(_moved(f, *how) for how in more.get(t, ()))]) for t, f in frames.items()}


class Oracle:
    """One model on an in-memory DuckDB whose views read frames that can be swapped."""

    def __init__(self, name: str, sql: str, frames: dict[str, pl.DataFrame], inputs: tuple[str, ...] = ()) -> None:
        self.name, self.sql = name, sql
        self.inputs = {t: f for t, f in grown(name, frames).items() if t in (inputs or inputs_of(sql))}
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        for table, frame in self.inputs.items():
            layer, _ = table.split(".")
            self.con.execute(f"create schema if not exists {layer}")
            self._show(table, frame)
        contract = contract_for(name)
        self.grain = tuple(c.name for c in contract.columns if c.primary_key) or GRAIN.get(name, ())
        tree = sqlglot.parse_one(sql, dialect="duckdb")
        self.literals = tuple(sorted({lit.this for lit in tree.find_all(exp.Literal) if lit.is_string and lit.this}))

    def _show(self, table: str, frame: pl.DataFrame) -> None:
        key = table.replace(".", "__")
        self.con.register(key, frame)
        self.con.execute(f"create or replace view {table} as select * from {key}")

    def run(self) -> pl.DataFrame | None:
        try:
            return self.con.sql(self.sql).pl()
        except duckdb.Error:
            return None        # a perturbation the SQL cannot take (a cast of a suffixed code): no verdict

    def lineage(self) -> ModelLineage:
        """What the trace says of the model: its SQL's column lineage."""
        return sql_lineage(self.sql)

    def named_columns(self) -> list[tuple[str, str]]:
        """Input columns the SQL names (a column it never names cannot change it)."""
        names = {i.name.lower() for i in sqlglot.parse_one(self.sql, dialect="duckdb").find_all(exp.Identifier)}
        return [(t, c) for t, f in self.inputs.items() for c in f.columns if c.lower() in names]

    def cells(self, result: pl.DataFrame, column: str) -> dict:
        """The column's values by row identity (a bag under one key when there is none)."""
        grain = [g for g in self.grain if g != column]
        if column in self.grain:
            grain = []
        cells: dict = {}
        for row in result.select(*grain, column).iter_rows():
            cells.setdefault(row[:-1], Counter())[_norm(row[-1])] += 1
        return cells

    def keys(self, result: pl.DataFrame) -> set:
        return set(result.select(*self.grain).iter_rows()) if self.grain else set()

    def changed(self, before: pl.DataFrame, after: pl.DataFrame) -> tuple[set[str], set[str]]:
        """(the columns that changed, the columns this perturbation gives no verdict on). A column
        is compared on the rows present before and after; a perturbation that renames every row
        judges only the identity columns (as bags): the others have no row to be compared on."""
        renamed = not self.keys(before) & self.keys(after) if self.grain else False
        changed, undecided = set(), set()
        for column in before.columns:
            if renamed and column not in self.grain:
                undecided.add(column)
                continue
            old, new = self.cells(before, column), self.cells(after, column)
            if any(old[k] != new[k] for k in old.keys() & new.keys()) or (renamed and old != new):
                changed.add(column)
        return changed, undecided

    def _judge(self, before: pl.DataFrame, table: str, column: str, frame: pl.DataFrame):
        """(changed, judged) output columns over the perturbations of ``table.column`` from ``frame``."""
        changed, judged = set(), set()
        key = contract_for(table).primary_key
        for _, series in _perturbations(frame[column], self.literals):
            perturbed = frame.with_columns(series.alias(column))
            if column in key and perturbed.select(key).is_duplicated().any():
                continue       # its contract's checks refuse a table whose key repeats: no such input
            self._show(table, perturbed)
            after = self.run()
            if after is not None:
                moved, undecided = self.changed(before, after)
                changed |= moved
                judged |= set(before.columns) - undecided
        self._show(table, frame)
        return changed, judged

    def effects(self, named: dict[str, set[str]]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """(output column -> the `layer.table.column` inputs whose perturbation changed it,
        output column -> the inputs no perturbation gave a verdict on).

        An input the trace names that changed nothing alone is tried again over a background:
        each perturbation of another input named for the column (a `coalesce(a, b)` shows b
        only where a is NULL; a due date shows its loan period only when loans are overdue)."""
        before = self.run()
        assert before is not None and before.height > 0, f"{self.name} has no rows to compare on the tiny home"
        found: dict[str, set[str]] = {c: set() for c in before.columns}
        judged: dict[str, set[str]] = {c: set() for c in before.columns}
        columns = self.named_columns()
        for table, column in columns:
            changed, seen = self._judge(before, table, column, self.inputs[table])
            for output in changed:
                found[output].add(f"{table}.{column}")
            for output in seen:
                judged[output].add(f"{table}.{column}")
        pending = {(output, name) for output in before.columns for name in named.get(output, set()) - found[output]}
        for output, name in self._shown_over_backgrounds(pending, named):
            found[output].add(name)
        # What names a row cannot be judged on the other columns: a row whose identity survives
        # the perturbation kept the values it was named by.
        identity = {f"{e.input_table}.{e.input_column}" for g in self.grain
                    for e in self.lineage().fields.get(g, ())}
        everything = {f"{t}.{c}" for t, c in columns}
        return found, {c: (everything - judged[c]) | (identity if c not in self.grain else set())
                       for c in before.columns}

    def _shown_over_backgrounds(self, pending: set[tuple[str, str]], named: dict[str, set[str]]) -> set:
        """Which (output, input) pairs of ``pending`` show a change when the input is perturbed
        over a background: each perturbation of another input the trace names for that output."""
        shown: set[tuple[str, str]] = set()
        budget = BACKGROUND_RUNS
        # A setting (a table of a row or a few) holds a dependency back most often (a minimum
        # that always wins): those are tried first.
        backgrounds = sorted({other for output, _ in pending for other in named[output]},
                             key=lambda name: (len(self.inputs.get(name.rsplit(".", 1)[0], ())) > SETTING_ROWS, name))
        for other in backgrounds:
            other_table, other_column = other.rsplit(".", 1)
            if other_table not in self.inputs or not pending - shown or budget <= 0:
                continue
            base = self.inputs[other_table]
            for _, series in _perturbations(base[other_column], self.literals):
                varied = base.with_columns(series.alias(other_column))
                self._show(other_table, varied)
                background = self.run()
                wanted = {name for output, name in pending - shown if other in named[output] and name != other}
                for name in sorted(wanted) if background is not None and background.height else ():
                    budget -= 1
                    table, column = name.rsplit(".", 1)
                    changed, _ = self._judge(background, table, column, varied if table == other_table
                                             else self.inputs[table])
                    self._show(other_table, varied)
                    shown |= {(output, name) for output in changed if (output, name) in pending}
            self._show(other_table, base)
        return shown

    def claims(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """(output column -> the inputs its trace names, output column -> those that may also
        change it: what decides a row's identity (it decides which row a value is compared in),
        and the table's row-deciding inputs for an identity column or a table without one)."""
        lineage = self.lineage()
        rows = {f"{e.input_table}.{e.input_column}" for e in lineage.dataset}
        named = {column: {f"{e.input_table}.{e.input_column}" for e in edges} for column, edges in lineage.fields.items()}
        identity = set().union(*(named.get(g, set()) for g in self.grain))
        allowed = {column: names | identity | (rows if column in self.grain or not self.grain else set())
                   for column, names in named.items()}
        return named, allowed


class PythonOracle(Oracle):
    """A mart computed in Python (the seat-demand forecast) against its declared lineage
    (lineage.mappings.DERIVED): every column of its inputs is perturbed, as no SQL says which
    it reads."""

    def __init__(self, mart: PythonMart, frames: dict[str, pl.DataFrame]) -> None:
        self.mart = mart
        super().__init__(mart.qualified_name, "select 1", {t: frames[t] for t in mart.inputs}, inputs=mart.inputs)

    def run(self) -> pl.DataFrame | None:
        try:
            frame = self.mart.build(self.con)
        except (duckdb.Error, ValueError, KeyError, TypeError, IndexError):
            return None        # an input its contract refuses (an hour of 24): no verdict
        return frame if frame.width else contract_for(self.name).empty_frame()

    def lineage(self) -> ModelLineage:
        edges = declared_edges(self.name)
        fields = {c: tuple(e for e in edges if e.output_column == c) for c in contract_for(self.name).column_names}
        return ModelLineage(fields=fields, dataset=(), expressions={})

    def named_columns(self) -> list[tuple[str, str]]:
        return [(t, c) for t, f in self.inputs.items() for c in f.columns]


def _norm(value):
    return round(value, 6) if isinstance(value, float) else value


def mismatches(oracle: Oracle) -> list[str]:
    """The trace against the perturbations: every input that changed a column is named (or is a
    row-deciding input it may name), every named input changed it (unless no perturbation of it
    could be judged)."""
    named, allowed = oracle.claims()
    effects, undecided = oracle.effects(named)
    found = []
    for column in sorted(effects):
        for name in sorted(named.get(column, set()) - effects[column] - undecided[column]):
            found.append(f"{oracle.name}.{column}: trace names {name} which does not affect it")
        for name in sorted(effects[column] - allowed.get(column, set())):
            found.append(f"{oracle.name}.{column}: misses {name} which does")
    return found
