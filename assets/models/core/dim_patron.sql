-- One row per reader, pseudonymous: the attributes analysis may use.
-- Consent comes from the registry (meta.consent, latest change per reader) when it holds
-- the reader, else from the patron export.
with patrons as (
    select * from staging.patron
),

consent_changes as (
    select
        patron_pid,
        profiling,
        row_number() over (partition by patron_pid order by changed_at desc) as newest_first
    from meta.consent
    where patron_pid is not null
),

latest_consent as (
    select patron_pid, profiling from consent_changes where newest_first = 1
),

final as (
    select
        patrons.patron_pid,
        patrons.pid_key_version,
        patrons.category_code,
        patrons.college,
        patrons.department,
        cast(patrons.enrolment_year as bigint) as enrolment_year,
        coalesce(latest_consent.profiling, patrons.profiling_consent) as profiling_consent
    from patrons
    left join latest_consent on latest_consent.patron_pid = patrons.patron_pid
)

select * from final
