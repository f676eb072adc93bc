-- Readers who borrowed this also borrowed: title pairs borrowed by the same consenting
-- readers, kept only when at least 5 distinct readers share the pair, so no
-- recommendation shows what one reader borrowed; the sensitive classes never appear.
with allowed_titles as (
    select bib_id, title, discipline_code from core.dim_title where not is_sensitive
),

consenting as (
    select * from core.dim_patron where profiling_consent
),

borrowed as (
    select distinct fact_loan.patron_pid, fact_loan.bib_id
    from core.fact_loan as fact_loan
    inner join consenting on consenting.patron_pid = fact_loan.patron_pid
    inner join allowed_titles on allowed_titles.bib_id = fact_loan.bib_id
),

title_readers as (
    select bib_id, count(*) as bib_readers from borrowed group by bib_id
),

pairs as (
    select this.bib_id, other.bib_id as also_bib_id, count(*) as readers
    from borrowed as this
    inner join borrowed as other on other.patron_pid = this.patron_pid and other.bib_id <> this.bib_id
    group by this.bib_id, other.bib_id
),

supported as (
    select
        pairs.*,
        title_readers.bib_readers,
        row_number() over (partition by pairs.bib_id order by pairs.readers desc, pairs.also_bib_id) as rank
    from pairs
    inner join title_readers on title_readers.bib_id = pairs.bib_id
    where pairs.readers >= 5
),

final as (
    select
        supported.bib_id,
        supported.also_bib_id,
        cast(supported.rank as bigint) as rank,
        allowed_titles.title as also_title,
        cast(supported.readers as bigint) as readers,
        cast(supported.bib_readers as bigint) as bib_readers,
        cast(supported.readers as double) / supported.bib_readers as confidence
    from supported
    left join allowed_titles on allowed_titles.bib_id = supported.also_bib_id
    where supported.rank <= 10
)

select * from final
