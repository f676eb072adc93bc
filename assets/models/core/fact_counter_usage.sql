-- COUNTER usage as the platforms report it, one row per item, attributes, metric and month.
with usage as (
    select * from staging.counter_usage
),

final as (
    select
        usage_month,
        release,
        report_id,
        platform,
        database,
        title,
        doi,
        isbn,
        coalesce(online_issn, print_issn) as issn,
        data_type,
        access_type,
        metric_type,
        usage_count
    from usage
)

select * from final
