-- People-counter movements per sensor and 15-minute interval. Totals are cumulative since
-- the last reset (closing time, or a device restart): a total lower than the one before
-- marks a reset, and the interval then counts the new total itself.
with readings as (
    select * from staging.gate_count
),

ordered as (
    select
        *,
        lag(in_total) over (partition by sensor_code, event_date order by counted_at) as previous_in,
        lag(out_total) over (partition by sensor_code, event_date order by counted_at) as previous_out
    from readings
),

deltas as (
    select
        *,
        previous_in is not null and (in_total < previous_in or out_total < previous_out) as is_reset
    from ordered
),

final as (
    select
        deltas.counted_at,
        deltas.event_date,
        deltas.sensor_code,
        sensors.zone_code,
        case when deltas.previous_in is null or deltas.is_reset then deltas.in_total
             else deltas.in_total - deltas.previous_in end as entries,
        case when deltas.previous_out is null or deltas.is_reset then deltas.out_total
             else deltas.out_total - deltas.previous_out end as exits,
        deltas.is_reset
    from deltas
    left join core.dim_gate as sensors
        on sensors.device_code = deltas.sensor_code and sensors.device_kind = 'sensor'
)

select * from final
