"""Marts SQL alone cannot say: those that take values from the library's config (the cost
table, assets.marts_eresource; the desk service standard; the sensitive classes) and the seat
demand forecast.

A config-driven mart is still one SQL query: the config values are written into it as
literals before it runs, so its lineage comes from sqlglot like a SQL model's. The
forecast is numpy over the hourly occupancy of marts.space_utilisation (assets.forecast).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import dagster as dg
import duckdb
import polars as pl

from assets.forecast import seat_demand_tables
from assets.marts_eresource import COSTS_FILE, eresource_top_sql, load_costs
from assets.sql_literals import number_literal as _number, text_literal as _text, values_cte as _values
from assets.table_asset import TableRun, Written, table_asset
from warehouse.contracts import conform, contract_for
from warehouse.lake.partitions import write_table
from warehouse.lake.views import compute_connection
from warehouse.library import Library
from warehouse.settings import Settings

MIN_SUPPORT = 5                            # readers behind any co-borrowing pair


# ---- desk staffing --------------------------------------------------------------------

HOURS = "hours as (\n    select * from (values " + ", ".join(f"({h})" for h in range(24)) + ") as h(event_hour)\n)"


def desk_staffing_sql(library: Library) -> str:
    standard = library.service_standard
    return f"""-- Desk staff per branch, weekday and hour: the hour's workload at its peak over the days
-- observed (loans and returns at the desk, people coming in) divided by what one staff
-- member handles in an hour (the library config's service standard), rounded up.
with standard as (
    select
        {_number(standard.transactions_per_staff_hour)} as transactions_per_staff_hour,
        {_number(standard.entries_per_staff_hour)} as entries_per_staff_hour,
        {int(standard.minimum_staff)} as minimum_staff
),

{HOURS},

transactions as (
    select branch_code, issue_date as event_date, cast(extract(hour from issued_at) as bigint) as event_hour
    from core.fact_loan
    union all
    select branch_code, return_date, cast(extract(hour from returned_at) as bigint)
    from core.fact_loan where returned_at is not null
),

entries as (
    select branch_code, event_date, event_hour
    from core.fact_gate_event
    where result = 'PASS' and direction = 'IN' and branch_code is not null
),

span as (
    select min(event_date) as first_date, max(event_date) as last_date from entries
),

branches as (
    select distinct branch_code from core.dim_zone
),

open_hours as (
    select branches.branch_code, days.date_key as event_date, days.weekday, hours.event_hour
    from core.dim_date as days
    cross join span
    cross join branches
    inner join hours on hours.event_hour >= days.open_hour and hours.event_hour < days.close_hour
    where days.date_key between span.first_date and span.last_date and not days.is_holiday
),

transaction_counts as (
    select branch_code, event_date, event_hour, count(*) as transactions
    from transactions group by branch_code, event_date, event_hour
),

entry_counts as (
    select branch_code, event_date, event_hour, count(*) as entries
    from entries group by branch_code, event_date, event_hour
),

hourly as (
    select
        open_hours.branch_code,
        open_hours.weekday,
        open_hours.event_hour,
        open_hours.event_date,
        coalesce(transaction_counts.transactions, 0) as transactions,
        coalesce(entry_counts.entries, 0) as entries
    from open_hours
    left join transaction_counts
        on transaction_counts.branch_code = open_hours.branch_code
        and transaction_counts.event_date = open_hours.event_date
        and transaction_counts.event_hour = open_hours.event_hour
    left join entry_counts
        on entry_counts.branch_code = open_hours.branch_code
        and entry_counts.event_date = open_hours.event_date
        and entry_counts.event_hour = open_hours.event_hour
),

peaks as (
    select
        branch_code,
        weekday,
        event_hour,
        count(distinct event_date) as days_observed,
        avg(transactions) as transactions_mean,
        max(transactions) as transactions_peak,
        avg(entries) as entries_mean,
        max(entries) as entries_peak
    from hourly
    group by branch_code, weekday, event_hour
),

final as (
    select
        peaks.branch_code,
        cast(peaks.weekday as bigint) as weekday,
        cast(peaks.event_hour as bigint) as event_hour,
        cast(peaks.days_observed as bigint) as days_observed,
        cast(peaks.transactions_mean as double) as transactions_mean,
        cast(peaks.transactions_peak as bigint) as transactions_peak,
        cast(peaks.entries_mean as double) as entries_mean,
        cast(peaks.entries_peak as bigint) as entries_peak,
        cast(standard.transactions_per_staff_hour as double) as transactions_per_staff_hour,
        cast(standard.entries_per_staff_hour as double) as entries_per_staff_hour,
        cast(peaks.transactions_peak / standard.transactions_per_staff_hour
             + peaks.entries_peak / standard.entries_per_staff_hour as double) as staff_hours_needed,
        cast(greatest(standard.minimum_staff, ceil(peaks.transactions_peak / standard.transactions_per_staff_hour
             + peaks.entries_peak / standard.entries_per_staff_hour)) as bigint) as staff_needed
    from peaks
    cross join standard
)

select * from final
"""


# ---- consent-gated reader marts --------------------------------------------------------

def _allowed_titles(library: Library) -> str:
    """CTEs `sensitive_prefixes` and `allowed_titles`: titles outside the sensitive CLC classes.

    A CLC class number is matched by prefix; any title whose discipline starts with a
    sensitive prefix (D, R) is left out too, whatever scheme classed it."""
    prefixes = _values("sensitive_prefixes", [("prefix", "varchar")], [(_text(p),) for p in library.sensitive_classes])
    return f"""{prefixes},

title_flags as (
    select
        titles.bib_id,
        max(case when (titles.classification_scheme = 'clc'
                       and starts_with(regexp_replace(upper(titles.class_number), '[^0-9A-Z]', '', 'g'), sensitive_prefixes.prefix))
                      or starts_with(titles.discipline_code, sensitive_prefixes.prefix)
                 then 1 else 0 end) as is_sensitive
    from core.dim_title as titles
    cross join sensitive_prefixes
    group by titles.bib_id
),

allowed_titles as (
    select titles.bib_id, titles.title, titles.discipline_code
    from core.dim_title as titles
    left join title_flags on title_flags.bib_id = titles.bib_id
    where coalesce(title_flags.is_sensitive, 0) = 0
),

consenting as (
    select * from core.dim_patron where profiling_consent
)"""


def reader_profile_sql(library: Library) -> str:
    return f"""-- Layered profiles of the readers who consented to profiling, nobody else: basic
-- attributes, behaviour (disciplines borrowed outside the sensitive classes, e-resource
-- platforms, visit rhythm) and scenario (exam-season share, graduation year).
with {_allowed_titles(library)},

loans as (
    select fact_loan.patron_pid, fact_loan.issue_date as activity_date, allowed_titles.discipline_code
    from core.fact_loan as fact_loan
    inner join consenting on consenting.patron_pid = fact_loan.patron_pid
    inner join allowed_titles on allowed_titles.bib_id = fact_loan.bib_id
),

loan_totals as (
    select patron_pid, count(*) as loans from loans group by patron_pid
),

discipline_counts as (
    select
        patron_pid,
        discipline_code,
        row_number() over (partition by patron_pid order by count(*) desc, discipline_code) as place
    from loans
    where discipline_code is not null
    group by patron_pid, discipline_code
),

top_disciplines as (
    select patron_pid, string_agg(discipline_code, ',' order by place) as top_disciplines
    from discipline_counts where place <= 3
    group by patron_pid
),

accesses as (
    select access.patron_pid, access.platform, access.session_key
    from core.fact_eresource_access as access
    inner join consenting on consenting.patron_pid = access.patron_pid
),

session_totals as (
    select patron_pid, count(distinct session_key) as eresource_sessions from accesses group by patron_pid
),

platform_counts as (
    select
        patron_pid,
        platform,
        row_number() over (partition by patron_pid order by count(*) desc, platform) as place
    from accesses
    where platform is not null
    group by patron_pid, platform
),

top_platforms as (
    select patron_pid, string_agg(platform, ',' order by place) as top_platforms
    from platform_counts where place <= 3
    group by patron_pid
),

visits as (
    select gate.patron_pid, gate.event_date as activity_date, gate.event_hour
    from core.fact_gate_event as gate
    inner join consenting on consenting.patron_pid = gate.patron_pid
    where gate.result = 'PASS' and gate.direction = 'IN'
),

visit_span as (
    select greatest(date_diff('day', min(event_date), max(event_date)) + 1, 1) as span_days
    from core.fact_gate_event
),

visit_totals as (
    select patron_pid, count(*) as visits, count(distinct activity_date) as visit_days
    from visits group by patron_pid
),

visit_hours as (
    select
        patron_pid,
        event_hour,
        row_number() over (partition by patron_pid order by count(*) desc, event_hour) as place
    from visits
    group by patron_pid, event_hour
),

activity as (
    select patron_pid, activity_date from loans
    union all
    select patron_pid, activity_date from visits
),

exam_share as (
    select
        activity.patron_pid,
        avg(case when days.is_exam_week then 1.0 else 0.0 end) as exam_season_share
    from activity
    left join core.dim_date as days on days.date_key = activity.activity_date
    group by activity.patron_pid
),

final as (
    select
        consenting.patron_pid,
        consenting.category_code,
        consenting.college,
        cast(coalesce(loan_totals.loans, 0) as bigint) as loans,
        top_disciplines.top_disciplines,
        cast(coalesce(session_totals.eresource_sessions, 0) as bigint) as eresource_sessions,
        top_platforms.top_platforms,
        cast(coalesce(visit_totals.visits, 0) as bigint) as visits,
        cast(coalesce(visit_totals.visit_days, 0) as bigint) as visit_days,
        cast(coalesce(visit_totals.visit_days, 0) * 7.0 / visit_span.span_days as double) as visits_per_week,
        cast(visit_hours.event_hour as bigint) as usual_visit_hour,
        cast(exam_share.exam_season_share as double) as exam_season_share,
        cast(case when consenting.category_code = 'UG' then consenting.enrolment_year + 4
                  when consenting.category_code = 'PG' then consenting.enrolment_year + 3 end as bigint) as graduation_year
    from consenting
    cross join visit_span
    left join loan_totals on loan_totals.patron_pid = consenting.patron_pid
    left join top_disciplines on top_disciplines.patron_pid = consenting.patron_pid
    left join session_totals on session_totals.patron_pid = consenting.patron_pid
    left join top_platforms on top_platforms.patron_pid = consenting.patron_pid
    left join visit_totals on visit_totals.patron_pid = consenting.patron_pid
    left join visit_hours on visit_hours.patron_pid = consenting.patron_pid and visit_hours.place = 1
    left join exam_share on exam_share.patron_pid = consenting.patron_pid
)

select * from final
"""


def also_borrowed_sql(library: Library, min_support: int = MIN_SUPPORT) -> str:
    return f"""-- Readers who borrowed this also borrowed: title pairs borrowed by the same consenting
-- readers, kept only when at least {min_support} distinct readers share the pair, so no
-- recommendation shows what one reader borrowed; the sensitive classes never appear.
with {_allowed_titles(library)},

borrowed as (
    select distinct fact_loan.patron_pid, fact_loan.bib_id
    from core.fact_loan as fact_loan
    inner join consenting on consenting.patron_pid = fact_loan.patron_pid
    inner join allowed_titles on allowed_titles.bib_id = fact_loan.bib_id
),

title_readers as (
    select bib_id, count(*) as bib_readers from borrowed group by bib_id
),

pairs as (
    select this.bib_id, other.bib_id as also_bib_id, count(*) as readers
    from borrowed as this
    inner join borrowed as other on other.patron_pid = this.patron_pid and other.bib_id <> this.bib_id
    group by this.bib_id, other.bib_id
),

supported as (
    select
        pairs.*,
        title_readers.bib_readers,
        row_number() over (partition by pairs.bib_id order by pairs.readers desc, pairs.also_bib_id) as rank
    from pairs
    inner join title_readers on title_readers.bib_id = pairs.bib_id
    where pairs.readers >= {int(min_support)}
),

final as (
    select
        supported.bib_id,
        supported.also_bib_id,
        cast(supported.rank as bigint) as rank,
        allowed_titles.title as also_title,
        cast(supported.readers as bigint) as readers,
        cast(supported.bib_readers as bigint) as bib_readers,
        cast(supported.readers as double) / supported.bib_readers as confidence
    from supported
    left join allowed_titles on allowed_titles.bib_id = supported.also_bib_id
    where supported.rank <= 10
)

select * from final
"""


# ---- the assets -----------------------------------------------------------------------

@dataclass(frozen=True)
class PythonMart:
    """A mart built in Python: ``sql`` renders its query from the config (lineage from sqlglot),
    or ``build`` computes its frame from a connection holding ``inputs``."""

    name: str
    inputs: tuple[str, ...]
    sql: Callable[[Library], str] | None = None
    build: Callable[[duckdb.DuckDBPyConnection, Library], pl.DataFrame] | None = None

    @property
    def qualified_name(self) -> str:
        return f"marts.{self.name}"


def _eresource_sql(library: Library) -> str:
    return eresource_top_sql(load_costs(Path(library.source).parent / COSTS_FILE))


def _forecast(table: str) -> Callable[[duckdb.DuckDBPyConnection, Library], pl.DataFrame]:
    def build(con: duckdb.DuckDBPyConnection, library: Library) -> pl.DataFrame:
        return seat_demand_tables(con)[table]
    return build


FORECAST_INPUTS = ("marts.space_utilisation", "core.dim_date", "core.dim_zone")
READER_INPUTS = ("core.dim_title", "core.dim_patron", "core.fact_loan")

PYTHON_MARTS: tuple[PythonMart, ...] = (
    PythonMart("eresource_top_monthly", ("core.fact_counter_usage", "marts.eresource_platform_monthly",
                                         "core.fact_eresource_access"), sql=_eresource_sql),
    PythonMart("desk_staffing", ("core.fact_loan", "core.fact_gate_event", "core.dim_date", "core.dim_zone"),
               sql=desk_staffing_sql),
    PythonMart("reader_profile", (*READER_INPUTS, "core.fact_eresource_access", "core.fact_gate_event", "core.dim_date"),
               sql=reader_profile_sql),
    PythonMart("also_borrowed", READER_INPUTS, sql=also_borrowed_sql),
    PythonMart("seat_demand_forecast", FORECAST_INPUTS, build=_forecast("seat_demand_forecast")),
    PythonMart("seat_demand_backtest", FORECAST_INPUTS, build=_forecast("seat_demand_backtest")),
)
TABLES = tuple(m.qualified_name for m in PYTHON_MARTS)


def build_mart(mart: PythonMart, settings: Settings, library: Library) -> tuple[pl.DataFrame, str | None]:
    """The mart's rows, conformed to its contract, and the SQL that made them (if any)."""
    con = compute_connection(settings, list(mart.inputs))
    try:
        if mart.sql is not None:
            sql = mart.sql(library)
            frame = con.sql(sql).pl()
        else:
            sql, frame = None, mart.build(con, library)
    finally:
        con.close()
    contract = contract_for(mart.qualified_name)
    if frame.width == 0:          # nothing to compute from yet: the table is written empty, typed
        frame = pl.DataFrame(schema=contract.polars_schema())
    return conform(frame, contract), sql


def _python_asset(mart: PythonMart) -> dg.AssetsDefinition:
    contract = contract_for(mart.qualified_name)

    def build(run: TableRun) -> Written:
        frame, _ = build_mart(mart, run.settings, run.library)
        path = write_table(run.settings, contract, frame)
        return Written(rows=frame.height, bytes=path.stat().st_size, files=1,
                       metadata={"path": dg.MetadataValue.path(str(path))})

    return table_asset([mart.qualified_name], build, group="marts", kinds={"duckdb", "python", "parquet"},
                       inputs=mart.inputs, sql=mart.sql, source_path=str(Path(__file__)))


def build_python_mart_assets() -> list[dg.AssetsDefinition]:
    return [_python_asset(m) for m in PYTHON_MARTS]
