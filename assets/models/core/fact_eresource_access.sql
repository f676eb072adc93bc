-- E-resource consultations from proxy logs, by the COUNTER processing rules. Only consultation
-- events count (staging.ezproxy_access.is_consultation: no redirect, static file, proxy page,
-- failure, nor a request no platform rule recognises). Double-click: the same user's repeat of
-- the same item in the same format within 30 seconds of the one before counts once (the CoP
-- keeps the last of a run; the count is the same, and the first needs no look at the next day).
-- The item is the platform's unitid, else the URL; the user is the reader's pseudonym, else the
-- EZproxy session, else the client network; a session is the EZproxy session, else user, day
-- and hour. Robots (COUNTER's list, where the log has the user agent) stay, flagged, so that the
-- marts can say how many they left out. Per session, the first request of an item is its
-- Unique_Item_Request and the first request of a title its Unique_Title_Request.
with requests as (
    select * from staging.ezproxy_access
    where is_consultation
),

keyed as (
    select
        *,
        coalesce(patron_pid, session_id, client_network) as user_key,
        coalesce(platform || '|' || unitid, url) as item_key,
        rtype in ('ARTICLE', 'BOOK', 'BOOK_SECTION', 'ENCYCLOPAEDIA_ENTRY', 'REFERENCE_ENTRY', 'PROCEEDING',
                  'PHD_THESIS', 'THESIS', 'REPORT', 'STANDARD', 'PREPRINT', 'DATASET', 'AUDIO', 'VIDEO',
                  'IMAGE', 'BOOK_CHAPTERS_BUNDLE') as is_request
    from requests
),

with_previous as (
    select
        *,
        lag(accessed_at) over (
            partition by user_key, item_key, coalesce(mime, '') order by accessed_at, url
        ) as previous_at
    from keyed
),

counted as (
    select
        *,
        coalesce(session_id, coalesce(user_key, 'anonymous') || '|' || strftime(accessed_at, '%Y-%m-%d %H')) as session_key
    from with_previous
    where previous_at is null or date_diff('second', previous_at, accessed_at) > 30
),

ranked as (
    select
        *,
        row_number() over (partition by session_key, is_request, item_key order by accessed_at, url) as item_order,
        row_number() over (
            partition by session_key, is_request, coalesce(platform || '|' || title_id, item_key)
            order by accessed_at, url
        ) as title_order
    from counted
),

final as (
    select
        accessed_at,
        event_date,
        cast(extract(hour from accessed_at) as bigint) as event_hour,
        patron_pid,
        session_key,
        coalesce(platform, host) as platform,
        host,
        url,
        rtype,
        mime,
        unitid,
        doi,
        print_identifier,
        online_identifier,
        title_id,
        publication_date,
        is_request,
        is_request and item_order = 1 as is_unique_item,
        is_request and title_order = 1 as is_unique_title,
        is_robot
    from ranked
)

select * from final
