-- The monthly loan top list (借阅排行榜): per month, the ten titles with the most loans
-- overall, within each discipline and within each reader category, with distinct readers
-- and the rank change from the month before. Every title borrowed in a month is ranked
-- first, so a title that climbs into the top ten still shows where it came from.
with loans as (
    select
        cast(date_trunc('month', fact_loan.issue_date) as date) as loan_month,
        fact_loan.bib_id,
        fact_loan.patron_pid,
        fact_loan.category_code,
        titles.discipline_code
    from core.fact_loan as fact_loan
    left join core.dim_title as titles on titles.bib_id = fact_loan.bib_id
    where fact_loan.bib_id is not null
),

scoped as (
    select loan_month, 'overall' as scope, 'all' as scope_value, bib_id, patron_pid from loans
    union all
    select loan_month, 'discipline', discipline_code, bib_id, patron_pid from loans
    where discipline_code is not null
    union all
    select loan_month, 'category', category_code, bib_id, patron_pid from loans
    where category_code is not null
),

counted as (
    select
        loan_month,
        scope,
        scope_value,
        bib_id,
        cast(count(*) as bigint) as loans,
        cast(count(distinct patron_pid) as bigint) as readers
    from scoped
    group by loan_month, scope, scope_value, bib_id
),

ranked as (
    select
        *,
        row_number() over (
            partition by loan_month, scope, scope_value
            order by loans desc, readers desc, bib_id
        ) as rank
    from counted
),

with_previous as (
    select
        ranked.*,
        previous.rank as previous_rank
    from ranked
    left join ranked as previous
        on previous.scope = ranked.scope
        and previous.scope_value = ranked.scope_value
        and previous.bib_id = ranked.bib_id
        and previous.loan_month = cast(ranked.loan_month - interval 1 month as date)
),

final as (
    select
        with_previous.loan_month,
        with_previous.scope,
        with_previous.scope_value,
        cast(with_previous.rank as bigint) as rank,
        with_previous.bib_id,
        titles.title,
        with_previous.loans,
        with_previous.readers,
        cast(with_previous.previous_rank as bigint) as previous_rank,
        cast(with_previous.previous_rank - with_previous.rank as bigint) as rank_change
    from with_previous
    left join core.dim_title as titles on titles.bib_id = with_previous.bib_id
    where with_previous.rank <= 10
)

select * from final
