-- E-resource use per platform and month, each figure taken from one COUNTER report, named in
-- basis_report. The reports a platform sends for a month (PR, DR, TR, IR and their standard
-- views) count the same use at different grains: adding them counts it two or three times.
-- The COUNTER Code of Practice R5.1 gives platform totals to the Platform Report; a platform
-- and month without one falls back, in this order, to what it sent:
--   1 PR     Platform Report: the platform's use of every Data_Type, the report for totals
--   2 PR_P1  its standard view (Access_Method Regular), the same totals
--   3 DR     Database Report summed over databases: every database's use, title content and
--            the rest alike (Database_Full_Item, Multimedia, Image, Audiovisual…)
--   4 DR_D1  its standard view
--   5 TR     Title Report summed over titles: title content only (Book, Journal, Report…),
--            so it misses the database items and multimedia a DR counts
--   6 IR     Item Report summed over items: optional, often delivered for a few Data_Types only
--   7 another standard view (TR_J3, TR_B1, IR_A1…): one Data_Type's share; the largest is taken
-- Only Access_Method Regular counts (TDM, text and data mining, is machine use COUNTER keeps
-- apart; a report without the column is a standard view, Regular by definition). Of one
-- report delivered in two releases, the newer counts. A PR or PR_P1 without a
-- Total_Item_Requests row says the platform had none; any other report needs one to be chosen
-- (DR_D2, TR_B2, TR_J2 count denials only).
with usage as (
    select usage_month, platform, report_id, release, metric_type, usage_count
    from core.fact_counter_usage
    where coalesce(access_method, 'Regular') = 'Regular'
      and platform is not null
),

per_report as (
    select
        usage_month,
        platform,
        report_id,
        release,
        sum(case when metric_type = 'Total_Item_Requests' then usage_count else 0 end) as total_item_requests,
        sum(case when metric_type = 'Unique_Item_Requests' then usage_count end) as unique_item_requests,
        sum(case when metric_type = 'Total_Item_Investigations' then usage_count end) as total_item_investigations,
        sum(case when metric_type = 'Total_Item_Requests' then 1 else 0 end) as request_rows,
        case report_id
            when 'PR' then 1 when 'PR_P1' then 2 when 'DR' then 3 when 'DR_D1' then 4
            when 'TR' then 5 when 'IR' then 6 else 7
        end as preference
    from usage
    group by usage_month, platform, report_id, release
),

ranked as (
    select
        *,
        row_number() over (
            partition by usage_month, platform
            order by preference,
                     case when preference = 7 then total_item_requests else 0 end desc,
                     report_id,
                     release desc
        ) as choice
    from per_report
    where request_rows > 0 or report_id in ('PR', 'PR_P1')
),

received as (
    -- every report the platform sent for the month, chosen or not
    select usage_month, platform, string_agg(report_id, ', ' order by report_id) as reports_received
    from (select distinct usage_month, platform, report_id from usage) as sent
    group by usage_month, platform
),

final as (
    select
        ranked.usage_month,
        ranked.platform,
        ranked.report_id as basis_report,
        ranked.release,
        cast(ranked.total_item_requests as bigint) as total_item_requests,
        cast(ranked.unique_item_requests as bigint) as unique_item_requests,
        cast(ranked.total_item_investigations as bigint) as total_item_investigations,
        received.reports_received
    from ranked
    join received
        on received.usage_month = ranked.usage_month and received.platform = ranked.platform
    where ranked.choice = 1
)

select * from final
