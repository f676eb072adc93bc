-- One row per physical item of the catalogue.
with items as (
    select * from staging.item
),

final as (
    select
        item_number,
        barcode,
        bib_id,
        home_branch,
        location,
        call_number,
        item_type,
        acquired_date
    from items
)

select * from final
