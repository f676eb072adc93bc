-- Turnstile events with the zone and branch of their gate.
with events as (
    select * from staging.gate_event
),

gates as (
    select * from core.dim_gate where device_kind = 'gate'
),

final as (
    select
        events.event_at,
        events.event_date,
        cast(extract(hour from events.event_at) as bigint) as event_hour,
        events.gate_code,
        gates.zone_code,
        gates.branch_code,
        events.direction,
        events.result,
        events.patron_pid
    from events
    left join gates on gates.device_code = events.gate_code
)

select * from final
