-- OPAC searches, without the query as typed (the normalised query is enough to analyse).
with searches as (
    select * from staging.search
),

final as (
    select
        searched_at,
        event_date,
        session_id,
        patron_pid,
        query_normalised,
        search_type,
        hit_count,
        zero_hit
    from searches
)

select * from final
