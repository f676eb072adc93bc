-- Disciplines whose borrowing fell: loans per open day compared with the month before and
-- with the same month a year before, listed when the fall is larger than the threshold,
-- with the candidate causes beside each fall: fewer borrowers, fewer new titles, more
-- searching per loan (searches carry no discipline, so that ratio is the library's), and
-- COUNTER requests for the discipline's titles, matched to the catalogue by ISBN, from one title
-- report per platform and month (null for a month without COUNTER data). Months count only the open days the data covers, so a month
-- half loaded is not a fall. The threshold is written in each comparison below.
with loans as (
    select
        fact_loan.issue_date,
        fact_loan.patron_pid,
        titles.discipline_code
    from core.fact_loan as fact_loan
    inner join core.dim_title as titles on titles.bib_id = fact_loan.bib_id
    where titles.discipline_code is not null
),

span as (
    select min(issue_date) as first_date, max(issue_date) as last_date from core.fact_loan
),

months as (
    select
        cast(date_trunc('month', days.date_key) as date) as loan_month,
        cast(count(*) as bigint) as open_days
    from core.dim_date as days
    cross join span
    where days.date_key between span.first_date and span.last_date and not days.is_holiday
    group by cast(date_trunc('month', days.date_key) as date)
),

grid as (
    select months.loan_month, months.open_days, disciplines.discipline_code
    from months
    cross join core.dim_discipline as disciplines
),

monthly_loans as (
    select
        cast(date_trunc('month', issue_date) as date) as loan_month,
        discipline_code,
        count(*) as loans,
        count(distinct patron_pid) as borrowers
    from loans
    group by cast(date_trunc('month', issue_date) as date), discipline_code
),

new_titles as (
    select
        cast(date_trunc('month', items.acquired_date) as date) as loan_month,
        titles.discipline_code,
        count(distinct items.bib_id) as new_titles
    from core.dim_item as items
    inner join core.dim_title as titles on titles.bib_id = items.bib_id
    where items.acquired_date is not null
    group by cast(date_trunc('month', items.acquired_date) as date), titles.discipline_code
),

title_usage as (
    -- Regular use only (TDM is kept apart, as in COUNTER's standard views)
    select usage_month, coalesce(platform, '') as platform_key, report_id, release, isbn, metric_type, usage_count
    from core.fact_counter_usage
    where report_id like 'TR%' and coalesce(access_method, 'Regular') = 'Regular'
),

title_reports as (
    select
        usage_month,
        platform_key,
        report_id,
        release,
        sum(case when metric_type = 'Total_Item_Requests' then usage_count else 0 end) as requests
    from title_usage
    group by usage_month, platform_key, report_id, release
),

chosen_title_reports as (
    -- one title report per platform and month, the TR, else its largest standard view: a
    -- book's requests are in the TR, TR_B1 and TR_B3 alike, and adding them counts them twice
    select
        *,
        row_number() over (
            partition by usage_month, platform_key
            order by case when report_id = 'TR' then 0 else 1 end, requests desc, report_id, release desc
        ) as choice
    from title_reports
),

counter_requests as (
    select
        counter.usage_month as loan_month,
        titles.discipline_code,
        sum(counter.usage_count) as requests
    from title_usage as counter
    inner join chosen_title_reports as chosen
        on chosen.usage_month = counter.usage_month and chosen.platform_key = counter.platform_key
        and chosen.report_id = counter.report_id and chosen.release = counter.release and chosen.choice = 1
    inner join core.dim_title as titles on titles.isbn = counter.isbn
    where counter.metric_type = 'Total_Item_Requests' and titles.discipline_code is not null
    group by counter.usage_month, titles.discipline_code
),

counter_months as (
    select distinct usage_month as loan_month from core.fact_counter_usage
),

library_loans as (
    select cast(date_trunc('month', issue_date) as date) as loan_month, count(*) as loans
    from core.fact_loan
    group by cast(date_trunc('month', issue_date) as date)
),

library_searches as (
    select cast(date_trunc('month', event_date) as date) as loan_month, count(*) as searches
    from core.fact_search
    group by cast(date_trunc('month', event_date) as date)
),

per_month as (
    select
        grid.loan_month,
        grid.discipline_code,
        grid.open_days,
        coalesce(monthly_loans.loans, 0) as loans,
        coalesce(monthly_loans.borrowers, 0) as borrowers,
        coalesce(new_titles.new_titles, 0) as new_titles,
        case when counter_months.loan_month is not null then coalesce(counter_requests.requests, 0) end as eresource_requests,
        cast(library_searches.searches as double) / nullif(library_loans.loans, 0) as searches_per_loan
    from grid
    left join monthly_loans
        on monthly_loans.loan_month = grid.loan_month and monthly_loans.discipline_code = grid.discipline_code
    left join new_titles
        on new_titles.loan_month = grid.loan_month and new_titles.discipline_code = grid.discipline_code
    left join counter_requests
        on counter_requests.loan_month = grid.loan_month and counter_requests.discipline_code = grid.discipline_code
    left join counter_months on counter_months.loan_month = grid.loan_month
    left join library_loans on library_loans.loan_month = grid.loan_month
    left join library_searches on library_searches.loan_month = grid.loan_month
),

comparisons as (
    select loan_month, cast(loan_month - interval 1 month as date) as baseline_month,
           'month_over_month' as comparison, 0.2 as threshold
    from months where loan_month is not null
    union all
    select loan_month, cast(loan_month - interval 12 month as date), 'year_over_year', 0.2
    from months where loan_month is not null
),

compared as (
    select
        current_month.loan_month,
        comparisons.comparison,
        comparisons.threshold,
        baseline.loan_month as baseline_month,
        current_month.discipline_code,
        current_month.loans,
        baseline.loans as baseline_loans,
        current_month.open_days,
        baseline.open_days as baseline_open_days,
        (cast(current_month.loans as double) / current_month.open_days)
            / (cast(baseline.loans as double) / baseline.open_days) - 1 as change,
        current_month.new_titles,
        baseline.new_titles as baseline_new_titles,
        current_month.eresource_requests,
        baseline.eresource_requests as baseline_eresource_requests,
        current_month.borrowers,
        baseline.borrowers as baseline_borrowers,
        current_month.searches_per_loan,
        baseline.searches_per_loan as baseline_searches_per_loan
    from per_month as current_month
    inner join comparisons on comparisons.loan_month = current_month.loan_month
    inner join per_month as baseline
        on baseline.discipline_code = current_month.discipline_code
        and baseline.loan_month = comparisons.baseline_month
    where baseline.loans > 0
),

final as (
    select
        compared.loan_month,
        compared.comparison,
        compared.baseline_month,
        compared.discipline_code,
        cast(compared.loans as bigint) as loans,
        cast(compared.baseline_loans as bigint) as baseline_loans,
        compared.open_days,
        compared.baseline_open_days,
        cast(compared.change as double) as change,
        cast(compared.threshold as double) as threshold,
        cast(compared.eresource_requests as bigint) as eresource_requests,
        cast(compared.baseline_eresource_requests as bigint) as baseline_eresource_requests,
        cast(compared.new_titles as bigint) as new_titles,
        cast(compared.baseline_new_titles as bigint) as baseline_new_titles,
        cast(compared.borrowers as bigint) as borrowers,
        cast(compared.baseline_borrowers as bigint) as baseline_borrowers,
        cast(compared.searches_per_loan as double) as searches_per_loan,
        cast(compared.baseline_searches_per_loan as double) as baseline_searches_per_loan
    from compared
    where compared.change < -compared.threshold
)

select * from final
