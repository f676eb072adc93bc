-- The numbers a library puts in its annual report, per month and for the whole year (the
-- row whose month is null): distinct readers do not add up over months, so the year is
-- counted from the rows again rather than summed from the months. E-resource requests are the
-- platforms' COUNTER totals of marts.eresource_platform_monthly, each from one report (PR, else
-- DR, TR, IR: the order is explained there), never the PR, DR and TR of a platform added up;
-- eresource_basis says which reports they came from. They are summed apart from the daily
-- activity and joined by year and month (a month may have COUNTER reports and nothing else).
with activity as (
    select event_date as activity_date, 'visit' as kind, patron_pid, 1 as amount
    from core.fact_gate_event
    where result = 'PASS' and direction = 'IN'
    union all
    select issue_date, 'loan', patron_pid, 1 from core.fact_loan
    union all
    select event_date, 'ezproxy_access', null, 1 from core.fact_eresource_access where not is_robot
    union all
    select event_date, case when zero_hit then 'zero_hit_search' else 'search' end, null, 1
    from core.fact_search
),

dated as (
    select
        cast(year(activity_date) as bigint) as year,
        cast(month(activity_date) as bigint) as month,
        kind,
        case when kind in ('visit', 'loan') then patron_pid end as active_pid,
        amount
    from activity
),

both_grains as (
    -- one row per month and one per year (month null): the same sums at two grains
    select
        year,
        month,
        sum(case when kind = 'visit' then amount else 0 end) as visits,
        sum(case when kind = 'loan' then amount else 0 end) as loans,
        count(distinct active_pid) as active_readers,
        sum(case when kind = 'ezproxy_access' then amount else 0 end) as ezproxy_accesses,
        sum(case when kind in ('search', 'zero_hit_search') then amount else 0 end) as searches,
        sum(case when kind = 'zero_hit_search' then amount else 0 end) as zero_hit_searches
    from dated
    group by grouping sets ((year, month), (year))
),

counter_platforms as (
    select
        cast(year(usage_month) as bigint) as year,
        cast(month(usage_month) as bigint) as month,
        basis_report,
        platform,
        total_item_requests
    from marts.eresource_platform_monthly
),

basis_counts as (
    -- requests and platforms per basis report, per month and per year (month null)
    select
        year,
        month,
        basis_report,
        count(distinct platform) as platforms,
        sum(total_item_requests) as requests
    from counter_platforms
    group by grouping sets ((year, month, basis_report), (year, basis_report))
),

eresource as (
    -- e.g. 'PR 11 platforms; DR 1 platform', the most used basis first
    select
        year,
        month,
        sum(requests) as eresource_requests,
        string_agg(
            basis_report || ' ' || cast(platforms as varchar) || case when platforms = 1 then ' platform' else ' platforms' end,
            '; ' order by platforms desc, basis_report
        ) as eresource_basis
    from basis_counts
    group by year, month
),

final as (
    select
        coalesce(both_grains.year, eresource.year) as year,
        cast(coalesce(both_grains.month, eresource.month) as bigint) as month,
        cast(coalesce(visits, 0) as bigint) as visits,
        cast(coalesce(loans, 0) as bigint) as loans,
        cast(coalesce(active_readers, 0) as bigint) as active_readers,
        cast(coalesce(eresource.eresource_requests, 0) as bigint) as eresource_requests,
        eresource.eresource_basis,
        cast(coalesce(ezproxy_accesses, 0) as bigint) as ezproxy_accesses,
        cast(coalesce(searches, 0) as bigint) as searches,
        cast(coalesce(zero_hit_searches, 0) as bigint) as zero_hit_searches
    from both_grains
    full join eresource
        on eresource.year = both_grains.year and coalesce(eresource.month, 0) = coalesce(both_grains.month, 0)
)

select * from final
