-- What to buy: queries that found nothing, grouped by their normalised text and kept only
-- when at least 5 distinct sessions searched them (so no one reader's search is shown);
-- titles whose holds outrun their copies, by the hold ratio librarians use (Koha's hold
-- ratios report: holds per copy of at least 3, and the copies to add to fall below it),
-- counted over the last 30 days of holds; and titles whose loans outran their copies: the
-- most loans of a title out at the same time, when every copy was out at once.
with zero_hits as (
    select
        query_normalised,
        event_date,
        coalesce(session_id, patron_pid) as searcher
    from core.fact_search
    where zero_hit and query_normalised is not null and query_normalised <> ''
),

searched as (
    select
        query_normalised,
        count(*) as searches,
        count(distinct searcher) as searchers,
        min(event_date) as first_seen_date,
        max(event_date) as last_seen_date
    from zero_hits
    group by query_normalised
),

copies as (
    select bib_id, count(*) as copies from core.dim_item group by bib_id
),

-- Koha's hold-ratio report: a title is listed from this many holds per copy.
hold_rule as (
    select 3 as holds_per_copy
),

hold_window as (
    select max(event_date) as last_date, cast(max(event_date) - interval 29 day as date) as first_date
    from core.fact_hold
),

recent_holds as (
    select
        fact_hold.bib_id,
        count(*) as holds,
        min(fact_hold.event_date) as first_seen_date,
        max(fact_hold.event_date) as last_seen_date
    from core.fact_hold as fact_hold
    cross join hold_window
    where fact_hold.event_date between hold_window.first_date and hold_window.last_date
    group by fact_hold.bib_id
),

held as (
    select
        recent_holds.bib_id,
        recent_holds.holds,
        copies.copies,
        recent_holds.first_seen_date,
        recent_holds.last_seen_date
    from recent_holds
    inner join copies on copies.bib_id = recent_holds.bib_id
    cross join hold_rule
    where recent_holds.holds >= hold_rule.holds_per_copy * copies.copies
),

moves as (
    select bib_id, issued_at as moved_at, 1 as step, issue_date as event_date
    from core.fact_loan where bib_id is not null
    union all
    select bib_id, returned_at, -1, return_date
    from core.fact_loan where bib_id is not null and returned_at is not null
),

concurrent as (
    select
        bib_id,
        event_date,
        sum(step) over (
            partition by bib_id
            order by moved_at, step
            rows between unbounded preceding and current row
        ) as out_now
    from moves
),

title_loans as (
    select
        bib_id,
        count(*) as loans,
        min(issue_date) as first_seen_date,
        max(issue_date) as last_seen_date
    from core.fact_loan
    where bib_id is not null
    group by bib_id
),

peaks as (
    select bib_id, max(out_now) as peak_concurrent_loans from concurrent group by bib_id
),

outrun as (
    select
        title_loans.bib_id,
        copies.copies,
        title_loans.loans,
        peaks.peak_concurrent_loans,
        title_loans.first_seen_date,
        title_loans.last_seen_date
    from title_loans
    inner join peaks on peaks.bib_id = title_loans.bib_id
    inner join copies on copies.bib_id = title_loans.bib_id
    where peaks.peak_concurrent_loans >= copies.copies
),

final as (
    select
        'searched_not_held' as demand_kind,
        searched.query_normalised as query_text,
        cast(null as varchar) as bib_id,
        cast(null as varchar) as title,
        cast(null as varchar) as discipline_code,
        cast(searched.searches as bigint) as searches,
        cast(searched.searchers as bigint) as searchers,
        cast(null as bigint) as copies,
        cast(null as bigint) as loans,
        cast(null as bigint) as peak_concurrent_loans,
        cast(null as bigint) as holds,
        cast(null as bigint) as copies_to_buy,
        cast(null as double) as holds_ratio,
        searched.first_seen_date,
        searched.last_seen_date
    from searched
    where searched.searchers >= 5
    union all
    select
        'holds_outrun_copies',
        cast(null as varchar),
        held.bib_id,
        titles.title,
        titles.discipline_code,
        cast(null as bigint),
        cast(null as bigint),
        cast(held.copies as bigint),
        cast(coalesce(title_loans.loans, 0) as bigint),     -- a title held but never lent: no loans
        cast(null as bigint),
        cast(held.holds as bigint),
        -- the fewest copies c with holds / c below the rule: floor(holds / rule) + 1, less those held
        cast(floor(held.holds / hold_rule.holds_per_copy) + 1 - held.copies as bigint),
        cast(held.holds as double) / held.copies,
        held.first_seen_date,
        held.last_seen_date
    from held
    cross join hold_rule
    left join core.dim_title as titles on titles.bib_id = held.bib_id
    left join title_loans on title_loans.bib_id = held.bib_id
    union all
    select
        'loans_outrun_copies',
        cast(null as varchar),
        outrun.bib_id,
        titles.title,
        titles.discipline_code,
        cast(null as bigint),
        cast(null as bigint),
        cast(outrun.copies as bigint),
        cast(outrun.loans as bigint),
        cast(outrun.peak_concurrent_loans as bigint),
        cast(null as bigint),
        cast(null as bigint),
        cast(outrun.peak_concurrent_loans as double) / outrun.copies,
        outrun.first_seen_date,
        outrun.last_seen_date
    from outrun
    left join core.dim_title as titles on titles.bib_id = outrun.bib_id
)

select * from final
