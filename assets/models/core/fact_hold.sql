-- Holds readers placed on titles: one row per hold, as the ILS numbered it.
with holds as (
    select * from staging.hold
),

final as (
    select
        placed_at,
        event_date,
        reserve_id,
        pickup_branch_code,
        bib_id,
        item_number,
        item_id,
        item_barcode,
        call_number,
        item_resolution,
        instance_id,
        request_type,
        patron_pid
    from holds
)

select * from final
