-- Occupancy of each zone by weekday and hour (the heat map librarians read): the mean and
-- the peak of the hourly occupancy from the turnstiles, against the zone's seats, with the
-- people counters' own occupancy beside it as a cross-check (the same clamp at zero, from
-- the counters' 15-minute movements, whose resets core.fact_gate_count already handles).
with hours as (
    select * from marts.space_utilisation
),

days as (
    select date_key, weekday from core.dim_date
),

counter_moves as (
    select
        zone_code,
        event_date,
        counted_at,
        sum(entries - exits) over (
            partition by zone_code, event_date
            order by counted_at
            rows between unbounded preceding and current row
        ) as raw_occupancy
    from core.fact_gate_count
    where zone_code is not null
),

counter_clamped as (
    select
        zone_code,
        event_date,
        cast(extract(hour from counted_at) as bigint) as event_hour,
        raw_occupancy - least(0, min(raw_occupancy) over (
            partition by zone_code, event_date
            order by counted_at
            rows between unbounded preceding and current row
        )) as occupancy
    from counter_moves
),

counter_hourly as (
    select zone_code, event_date, event_hour, max(occupancy) as counter_peak
    from counter_clamped
    group by zone_code, event_date, event_hour
),

joined as (
    select
        hours.branch_code,
        hours.zone_code,
        days.weekday,
        hours.event_hour,
        hours.event_date,
        hours.occupancy_mean,
        hours.occupancy_peak,
        hours.seat_capacity,
        counter_hourly.counter_peak
    from hours
    inner join days on days.date_key = hours.event_date
    left join counter_hourly
        on counter_hourly.zone_code = hours.zone_code
        and counter_hourly.event_date = hours.event_date
        and counter_hourly.event_hour = hours.event_hour
),

final as (
    select
        branch_code,
        zone_code,
        weekday,
        event_hour,
        cast(count(distinct event_date) as bigint) as days_observed,
        cast(avg(occupancy_mean) as double) as occupancy_mean,
        cast(max(occupancy_peak) as bigint) as occupancy_peak,
        max(seat_capacity) as seat_capacity,
        case when max(seat_capacity) > 0
             then cast(avg(occupancy_mean) as double) / max(seat_capacity) else 0.0 end as utilisation_mean,
        case when max(seat_capacity) > 0
             then cast(max(occupancy_peak) as double) / max(seat_capacity) else 0.0 end as utilisation_peak,
        cast(max(counter_peak) as bigint) as counter_occupancy_peak
    from joined
    group by branch_code, zone_code, weekday, event_hour
)

select * from final
