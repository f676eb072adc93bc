-- One row per reader, pseudonymous: the attributes analysis may use.
with patrons as (
    select * from staging.patron
),

final as (
    select
        patron_pid,
        pid_key_version,
        category_code,
        college,
        department,
        cast(enrolment_year as bigint) as enrolment_year,
        profiling_consent
    from patrons
)

select * from final
