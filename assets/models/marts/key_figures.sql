-- The numbers a library puts in its annual report, per month and for the whole year (the
-- row whose month is null): distinct readers do not add up over months, so the year is
-- counted from the rows again rather than summed from the months. E-resource requests are the
-- platforms' COUNTER totals of marts.eresource_platform_monthly, each from one report (PR, else
-- DR, TR, IR: the order is explained there), never the PR, DR and TR of a platform added up;
-- eresource_basis says which reports they came from.
with activity as (
    select event_date as activity_date, 'visit' as kind, patron_pid, 1 as amount
    from core.fact_gate_event
    where result = 'PASS' and direction = 'IN'
    union all
    select issue_date, 'loan', patron_pid, 1 from core.fact_loan
    union all
    select usage_month, 'eresource_request', null, total_item_requests
    from marts.eresource_platform_monthly
    union all
    select event_date, 'ezproxy_access', null, 1 from core.fact_eresource_access
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
        sum(case when kind = 'eresource_request' then amount else 0 end) as eresource_requests,
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
        platform
    from marts.eresource_platform_monthly
),

basis_counts as (
    -- platforms per basis report, per month and per year (month null)
    select year, month, basis_report, count(distinct platform) as platforms
    from counter_platforms
    group by grouping sets ((year, month, basis_report), (year, basis_report))
),

basis as (
    -- e.g. 'PR 11 platforms; DR 1 platform', the most used basis first
    select
        year,
        month,
        string_agg(
            basis_report || ' ' || cast(platforms as varchar) || case when platforms = 1 then ' platform' else ' platforms' end,
            '; ' order by platforms desc, basis_report
        ) as eresource_basis
    from basis_counts
    group by year, month
),

final as (
    select
        both_grains.year,
        cast(both_grains.month as bigint) as month,
        cast(visits as bigint) as visits,
        cast(loans as bigint) as loans,
        cast(active_readers as bigint) as active_readers,
        cast(eresource_requests as bigint) as eresource_requests,
        basis.eresource_basis,
        cast(ezproxy_accesses as bigint) as ezproxy_accesses,
        cast(searches as bigint) as searches,
        cast(zero_hit_searches as bigint) as zero_hit_searches
    from both_grains
    left join basis
        on basis.year = both_grains.year and coalesce(basis.month, 0) = coalesce(both_grains.month, 0)
)

select * from final
