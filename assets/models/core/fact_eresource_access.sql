-- E-resource accesses from EZproxy, by the COUNTER processing rules: static files and
-- failed requests are not accesses, and a repeat of the same URL by the same user within
-- 30 seconds counts once. The user is the reader's pseudonym, else the EZproxy session,
-- else the client network; a session is the EZproxy session, else user, day and hour.
with requests as (
    select * from staging.ezproxy_access
    where not is_static and not is_failed
),

keyed as (
    select
        *,
        coalesce(patron_pid, session_id, client_network) as user_key
    from requests
),

with_previous as (
    select
        *,
        lag(accessed_at) over (partition by user_key, url order by accessed_at) as previous_at
    from keyed
),

counted as (
    select * from with_previous
    where previous_at is null or date_diff('second', previous_at, accessed_at) > 30
),

final as (
    select
        accessed_at,
        event_date,
        cast(extract(hour from accessed_at) as bigint) as event_hour,
        patron_pid,
        coalesce(session_id, coalesce(user_key, 'anonymous') || '|' || strftime(accessed_at, '%Y-%m-%d %H')) as session_key,
        coalesce(platform, host) as platform,
        host,
        url
    from counted
)

select * from final
