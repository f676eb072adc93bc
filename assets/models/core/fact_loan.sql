-- One row per loan: each issue paired with the first return of the same item before the
-- item's next issue, and the renewals in between. Returns whose issue predates the data
-- are not loans of this table. An item is its FOLIO UUID where it has one (FOLIO events are
-- keyed by it, resolved or not), else its Koha item number.
with events as (
    select
        *,
        coalesce(item_id, cast(item_number as varchar)) as item_key
    from staging.circulation_event
),

issues as (
    select
        item_key,
        item_number,
        item_id,
        item_barcode,
        call_number,
        item_resolution,
        patron_pid,
        pid_key_version,
        category_code,
        branch_code,
        event_at as issued_at,
        lead(event_at) over (partition by item_key order by event_at) as next_issued_at
    from events
    where event_type = 'issue'
),

returns as (
    select item_key, event_at as returned_at
    from events
    where event_type = 'return'
),

renewals as (
    select item_key, event_at as renewed_at
    from events
    where event_type = 'renew'
),

first_returns as (
    select issues.item_key, issues.issued_at, min(returns.returned_at) as returned_at
    from issues
    inner join returns
        on returns.item_key = issues.item_key
        and returns.returned_at >= issues.issued_at
        and (issues.next_issued_at is null or returns.returned_at <= issues.next_issued_at)
    group by issues.item_key, issues.issued_at
),

loans as (
    select issues.*, first_returns.returned_at
    from issues
    left join first_returns
        on first_returns.item_key = issues.item_key
        and first_returns.issued_at = issues.issued_at
),

renew_counts as (
    select loans.item_key, loans.issued_at, count(renewals.renewed_at) as renew_count
    from loans
    left join renewals
        on renewals.item_key = loans.item_key
        and renewals.renewed_at > loans.issued_at
        and renewals.renewed_at < coalesce(loans.returned_at, loans.next_issued_at, timestamp '9999-12-31 00:00:00')
    group by loans.item_key, loans.issued_at
),

as_of as (
    select max(event_date) as as_of_date from events
),

dated as (
    select
        loans.*,
        renew_counts.renew_count,
        cast(loans.issued_at as date) as issue_date,
        cast(loans.returned_at as date) as return_date,
        cast(loans.issued_at as date)
            + cast(coalesce(categories.loan_period_days, 30) * (1 + renew_counts.renew_count) as integer) as due_date
    from loans
    inner join renew_counts
        on renew_counts.item_key = loans.item_key
        and renew_counts.issued_at = loans.issued_at
    left join core.dim_reader_category as categories
        on categories.category_code = loans.category_code
),

final as (
    select
        sha256(dated.item_key || '|' || cast(dated.issued_at as varchar)) as loan_id,
        dated.item_number,
        dated.item_id,
        dated.item_barcode,
        dated.call_number,
        dated.item_resolution,
        items.bib_id,
        dated.patron_pid,
        dated.pid_key_version,
        dated.category_code,
        dated.branch_code,
        dated.issued_at,
        dated.issue_date,
        dated.due_date,
        dated.returned_at,
        dated.return_date,
        dated.renew_count,
        datediff('day', dated.issue_date, dated.return_date) as loan_days,
        dated.returned_at is not null as is_returned,
        coalesce(dated.return_date, as_of.as_of_date) > dated.due_date as is_overdue,
        items.item_number is not null as item_known
    from dated
    cross join as_of
    left join core.dim_item as items
        on items.item_number = dated.item_number
)

select * from final
