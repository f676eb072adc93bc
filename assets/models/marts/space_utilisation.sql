-- Occupancy of each zone by day and hour, from the turnstiles, against its seats.
-- Each passage moves the zone's count by one (within a second, exits first: a seat left is
-- free for one who comes in); the count starts at zero every day (the library empties at
-- closing) and never goes below zero: an exit with nobody counted in
-- (a tailgater's entry missed) resets the baseline, so later entries count from zero.
-- That clamped running sum is the running sum less its lowest point so far (when below
-- zero), which window functions say without recursion. An hour's peak counts the readers
-- already inside when it began, and an hour without a passage between a zone's first and
-- last passage of the day still has its readers inside.
with passages as (
    select * from core.fact_gate_event
    where result = 'PASS' and zone_code is not null
),

moves as (
    select
        event_date,
        event_hour,
        branch_code,
        zone_code,
        event_at,
        case when direction = 'IN' then 1 else -1 end as step
    from passages
),

running as (
    select
        *,
        sum(step) over (
            partition by zone_code, event_date
            order by event_at, step
            rows between unbounded preceding and current row
        ) as raw_occupancy,
        row_number() over (
            partition by zone_code, event_date
            order by event_at, step
            rows between unbounded preceding and current row
        ) as seq
    from moves
),

clamped as (
    select
        *,
        raw_occupancy - least(0, min(raw_occupancy) over (
            partition by zone_code, event_date
            order by seq
            rows between unbounded preceding and current row
        )) as occupancy
    from running
),

by_hour as (
    select
        event_date,
        event_hour,
        branch_code,
        zone_code,
        cast(sum(case when step = 1 then 1 else 0 end) as bigint) as entries,
        cast(sum(case when step = -1 then 1 else 0 end) as bigint) as exits,
        max(occupancy) as peak_after_passages,
        avg(occupancy) as mean_after_passages,
        arg_max(occupancy, seq) as closing_occupancy
    from clamped
    group by event_date, event_hour, branch_code, zone_code
),

day_span as (
    select
        event_date,
        branch_code,
        zone_code,
        unnest(generate_series(min(event_hour), max(event_hour))) as event_hour
    from by_hour
    group by event_date, branch_code, zone_code
),

hourly as (
    -- inside when the hour begins: the count after the last passage of an earlier hour
    select
        day_span.event_date,
        day_span.event_hour,
        day_span.branch_code,
        day_span.zone_code,
        coalesce(by_hour.entries, 0) as entries,
        coalesce(by_hour.exits, 0) as exits,
        cast(greatest(
            coalesce(by_hour.peak_after_passages, 0),
            coalesce(last_value(by_hour.closing_occupancy ignore nulls) over (
                partition by day_span.zone_code, day_span.event_date
                order by day_span.event_hour
                rows between unbounded preceding and 1 preceding
            ), 0)
        ) as bigint) as occupancy_peak,
        cast(coalesce(by_hour.mean_after_passages, last_value(by_hour.closing_occupancy ignore nulls) over (
                partition by day_span.zone_code, day_span.event_date
                order by day_span.event_hour
                rows between unbounded preceding and 1 preceding
            ), 0)
             as double) as occupancy_mean
    from day_span
    left join by_hour
        on by_hour.event_date = day_span.event_date
        and by_hour.zone_code = day_span.zone_code
        and by_hour.event_hour = day_span.event_hour
),

final as (
    select
        hourly.event_date,
        hourly.event_hour,
        hourly.branch_code,
        hourly.zone_code,
        hourly.entries,
        hourly.exits,
        hourly.occupancy_peak,
        hourly.occupancy_mean,
        zones.seat_capacity,
        case when zones.seat_capacity > 0
             then cast(hourly.occupancy_peak as double) / zones.seat_capacity
             else 0.0 end as utilisation
    from hourly
    inner join core.dim_zone as zones on zones.zone_code = hourly.zone_code
)

select * from final
