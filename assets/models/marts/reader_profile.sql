-- Layered profiles of the readers who consented to profiling, nobody else: basic
-- attributes, behaviour (disciplines borrowed outside the sensitive classes, e-resource
-- platforms, visit rhythm) and scenario (exam-season share, graduation year).
with allowed_titles as (
    select bib_id, title, discipline_code from core.dim_title where not is_sensitive
),

consenting as (
    select * from core.dim_patron where profiling_consent
),

loans as (
    select fact_loan.patron_pid, fact_loan.issue_date as activity_date, allowed_titles.discipline_code
    from core.fact_loan as fact_loan
    inner join consenting on consenting.patron_pid = fact_loan.patron_pid
    inner join allowed_titles on allowed_titles.bib_id = fact_loan.bib_id
),

loan_totals as (
    select patron_pid, count(*) as loans from loans group by patron_pid
),

discipline_counts as (
    select
        patron_pid,
        discipline_code,
        row_number() over (partition by patron_pid order by count(*) desc, discipline_code) as place
    from loans
    where discipline_code is not null
    group by patron_pid, discipline_code
),

top_disciplines as (
    select patron_pid, string_agg(discipline_code, ',' order by place) as top_disciplines
    from discipline_counts where place <= 3
    group by patron_pid
),

accesses as (
    select access.patron_pid, access.platform, access.session_key
    from core.fact_eresource_access as access
    inner join consenting on consenting.patron_pid = access.patron_pid
    where not access.is_robot
),

session_totals as (
    select patron_pid, count(distinct session_key) as eresource_sessions from accesses group by patron_pid
),

platform_counts as (
    select
        patron_pid,
        platform,
        row_number() over (partition by patron_pid order by count(*) desc, platform) as place
    from accesses
    where platform is not null
    group by patron_pid, platform
),

top_platforms as (
    select patron_pid, string_agg(platform, ',' order by place) as top_platforms
    from platform_counts where place <= 3
    group by patron_pid
),

visits as (
    select gate.patron_pid, gate.event_date as activity_date, gate.event_hour
    from core.fact_gate_event as gate
    inner join consenting on consenting.patron_pid = gate.patron_pid
    where gate.result = 'PASS' and gate.direction = 'IN'
),

visit_span as (
    select greatest(date_diff('day', min(event_date), max(event_date)) + 1, 1) as span_days
    from core.fact_gate_event
),

visit_totals as (
    select patron_pid, count(*) as visits, count(distinct activity_date) as visit_days
    from visits group by patron_pid
),

visit_hours as (
    select
        patron_pid,
        event_hour,
        row_number() over (partition by patron_pid order by count(*) desc, event_hour) as place
    from visits
    group by patron_pid, event_hour
),

activity as (
    select patron_pid, activity_date from loans
    union all
    select patron_pid, activity_date from visits
),

exam_share as (
    select
        activity.patron_pid,
        avg(case when days.is_exam_week then 1.0 else 0.0 end) as exam_season_share
    from activity
    left join core.dim_date as days on days.date_key = activity.activity_date
    group by activity.patron_pid
),

final as (
    select
        consenting.patron_pid,
        consenting.category_code,
        consenting.college,
        cast(coalesce(loan_totals.loans, 0) as bigint) as loans,
        top_disciplines.top_disciplines,
        cast(coalesce(session_totals.eresource_sessions, 0) as bigint) as eresource_sessions,
        top_platforms.top_platforms,
        cast(coalesce(visit_totals.visits, 0) as bigint) as visits,
        cast(coalesce(visit_totals.visit_days, 0) as bigint) as visit_days,
        cast(coalesce(visit_totals.visit_days, 0) * 7.0 / visit_span.span_days as double) as visits_per_week,
        cast(visit_hours.event_hour as bigint) as usual_visit_hour,
        cast(exam_share.exam_season_share as double) as exam_season_share,
        cast(case when consenting.category_code = 'UG' then consenting.enrolment_year + 4
                  when consenting.category_code = 'PG' then consenting.enrolment_year + 3 end as bigint) as graduation_year
    from consenting
    cross join visit_span
    left join loan_totals on loan_totals.patron_pid = consenting.patron_pid
    left join top_disciplines on top_disciplines.patron_pid = consenting.patron_pid
    left join session_totals on session_totals.patron_pid = consenting.patron_pid
    left join top_platforms on top_platforms.patron_pid = consenting.patron_pid
    left join visit_totals on visit_totals.patron_pid = consenting.patron_pid
    left join visit_hours on visit_hours.patron_pid = consenting.patron_pid and visit_hours.place = 1
    left join exam_share on exam_share.patron_pid = consenting.patron_pid
)

select * from final
