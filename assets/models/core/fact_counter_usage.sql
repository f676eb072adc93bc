-- COUNTER usage as the platforms report it, one row per report, item, attributes, metric and month.
-- The reports of a platform and month are views of the same use: never sum across report_id.
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
        access_method,
        metric_type,
        usage_count
    from usage
)

select * from final
