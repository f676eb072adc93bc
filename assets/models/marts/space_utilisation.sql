-- Occupancy of each zone by day and hour, from the turnstiles, against its seats.
-- Each passage moves the zone's count by one; the count starts at zero every day (the
-- library empties at closing) and never goes below zero: an exit with nobody counted in
-- (a tailgater's entry missed) resets the baseline, so later entries count from zero.
-- That clamped running sum is the running sum less its lowest point so far (when below
-- zero), which window functions say without recursion.
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
            order by event_at, step desc
            rows between unbounded preceding and current row
        ) as raw_occupancy
    from moves
),

clamped as (
    select
        *,
        raw_occupancy - least(0, min(raw_occupancy) over (
            partition by zone_code, event_date
            order by event_at, step desc
            rows between unbounded preceding and current row
        )) as occupancy
    from running
),

hourly as (
    select
        event_date,
        event_hour,
        branch_code,
        zone_code,
        cast(sum(case when step = 1 then 1 else 0 end) as bigint) as entries,
        cast(sum(case when step = -1 then 1 else 0 end) as bigint) as exits,
        cast(max(occupancy) as bigint) as occupancy_peak,
        cast(avg(occupancy) as double) as occupancy_mean
    from clamped
    group by event_date, event_hour, branch_code, zone_code
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
