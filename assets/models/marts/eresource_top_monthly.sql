-- E-resource top 10 per month by platform, database and title, each list from one report of a
-- platform and month, as the reports count the same use at different grains and adding them
-- counts it twice or three times. Platforms: marts.eresource_platform_monthly (PR, else DR,
-- TR, IR; the order is explained there). Databases: the Database Report (DR, else its
-- standard view DR_D1). Titles: the Title Report (TR, else its largest standard view, TR_J3,
-- TR_B1…). Access_Method Regular only (TDM is kept apart, as in the standard views). EZproxy
-- consultations (core.fact_eresource_access, robots left out and counted apart) sit beside the
-- platforms, and rank titles (ezproxy_title: the platform's title id) and articles or chapters
-- (ezproxy_item: the DOI, else the platform's unitid) by the same COUNTER metrics computed from
-- the proxy log (basis_report EZproxy). Cost per use is a month's share of the yearly cost
-- (core.dim_eresource_cost, from the library's eresource_costs.yaml).
with usage as (
    select
        usage_month,
        case when report_id in ('DR', 'DR_D1') then 'database'
             when report_id like 'TR%' then 'title' end as level,
        report_id,
        release,
        coalesce(platform, '') as platform_key,
        platform,
        database,
        title,
        metric_type,
        usage_count
    from core.fact_counter_usage
    where coalesce(access_method, 'Regular') = 'Regular'
),

proxy_items as (
    -- the proxy's consultations of titles and of items, robots left out (investigations: every
    -- consultation but a search)
    select
        cast(date_trunc('month', event_date) as date) as usage_month,
        level.level,
        case when level.level = 'ezproxy_title' then title_id else coalesce(doi, unitid) end as name,
        platform,
        is_request,
        is_unique_item
    from core.fact_eresource_access
    cross join (values ('ezproxy_title'), ('ezproxy_item')) as level(level)
    where not is_robot and rtype <> 'SEARCH'
),

reports as (
    select
        usage_month,
        level,
        platform_key,
        report_id,
        release,
        sum(case when metric_type = 'Total_Item_Requests' then usage_count else 0 end) as requests
    from usage
    where level is not null
    group by usage_month, level, platform_key, report_id, release
),

chosen as (
    -- one report per platform, month and list: the master report, else the largest view
    select
        *,
        row_number() over (
            partition by usage_month, level, platform_key
            order by case when report_id in ('DR', 'TR') then 0 else 1 end, requests desc, report_id, release desc
        ) as choice
    from reports
    where requests > 0 or report_id in ('DR', 'TR')
),

detail as (
    select
        usage.usage_month,
        usage.level,
        case when usage.level = 'database' then usage.database else usage.title end as name,
        usage.platform,
        usage.report_id,
        usage.metric_type,
        usage.usage_count
    from usage
    join chosen
        on chosen.usage_month = usage.usage_month and chosen.level = usage.level
        and chosen.platform_key = usage.platform_key and chosen.report_id = usage.report_id
        and chosen.release = usage.release and chosen.choice = 1
),

counter_monthly as (
    -- a title or database is one platform's: two platforms may carry journals of one name
    select
        usage_month,
        level,
        name,
        platform,
        string_agg(distinct report_id, ', ' order by report_id) as basis_report,
        sum(case when metric_type = 'Total_Item_Requests' then usage_count else 0 end) as total_item_requests,
        sum(case when metric_type = 'Total_Item_Investigations' then usage_count else 0 end) as total_item_investigations,
        sum(case when metric_type = 'Unique_Item_Requests' then usage_count else 0 end) as unique_item_requests
    from detail
    where name is not null
    group by usage_month, level, name, platform
    union all
    select
        usage_month,
        'platform',
        platform,
        platform,
        basis_report,
        total_item_requests,
        coalesce(total_item_investigations, 0),
        coalesce(unique_item_requests, 0)
    from marts.eresource_platform_monthly
),

costed as (
    -- what the library pays for a platform, database or title it lists: a month's share of the year
    select
        counter_monthly.*,
        costs.cost / 12 as cost,
        costs.cost / 12 / nullif(counter_monthly.total_item_requests, 0) as cost_per_use
    from counter_monthly
    left join core.dim_eresource_cost as costs
        on costs.level = counter_monthly.level and costs.name = counter_monthly.name
        and costs.cost_year = year(counter_monthly.usage_month)
),

monthly as (
    select * from costed
    union all
    -- the proxy's lists carry no cost: the library pays for platforms, databases and titles
    select
        usage_month,
        level,
        name,
        platform,
        'EZproxy',
        sum(case when is_request then 1 else 0 end),
        count(*),
        sum(case when is_unique_item then 1 else 0 end),
        cast(null as double),
        cast(null as double)
    from proxy_items
    where name is not null
    group by usage_month, level, name, platform
),

ranked as (
    select
        *,
        row_number() over (
            partition by usage_month, level
            order by total_item_requests desc, total_item_investigations desc, name, platform
        ) as rank
    from monthly
),

proxy as (
    select
        cast(date_trunc('month', event_date) as date) as usage_month,
        platform,
        sum(case when is_robot then 0 else 1 end) as accesses,
        sum(case when is_robot then 1 else 0 end) as robots
    from core.fact_eresource_access
    where platform is not null
    group by cast(date_trunc('month', event_date) as date), platform
),

final as (
    select
        ranked.usage_month,
        ranked.level,
        cast(ranked.rank as bigint) as rank,
        ranked.name,
        ranked.platform,
        ranked.basis_report,
        cast(ranked.total_item_requests as bigint) as total_item_requests,
        cast(ranked.total_item_investigations as bigint) as total_item_investigations,
        cast(ranked.unique_item_requests as bigint) as unique_item_requests,
        cast(case when ranked.level = 'platform' then coalesce(proxy.accesses, 0) end as bigint) as ezproxy_accesses,
        cast(case when ranked.level = 'platform' then coalesce(proxy.robots, 0) end as bigint) as ezproxy_robots,
        cast(ranked.cost as double) as cost,
        cast(ranked.cost_per_use as double) as cost_per_use
    from ranked
    left join proxy
        on proxy.usage_month = ranked.usage_month and proxy.platform = ranked.name and ranked.level = 'platform'
    where ranked.rank <= 10
)

select * from final
