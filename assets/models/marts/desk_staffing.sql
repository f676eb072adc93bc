-- Desk staff per branch, weekday and hour: the hour's workload at its peak over the days
-- observed (loans and returns at the desk, people coming in) divided by what one staff
-- member handles in an hour (core.dim_service_standard, the library config's service
-- standard), rounded up, and never below its minimum staff.
with hours as (
    select * from (values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13), (14), (15), (16), (17), (18), (19), (20), (21), (22), (23)) as h(event_hour)
),

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
    cross join core.dim_service_standard as standard
)

select * from final
