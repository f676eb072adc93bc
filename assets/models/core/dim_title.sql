-- One row per bibliographic record, with its discipline: from its CLC class, else its LC
-- class, else its Dewey class, through core.discipline_map (the longest matching prefix
-- wins). Class numbers are matched upper-cased with letters and digits only, and only when
-- they look like their scheme (an LC 050 may hold a label number such as "Atlantic 1259").
with records as (
    select * from staging.bib_record
),

prefixes as (
    select scheme, class_prefix, discipline_code from core.discipline_map
),

classes as (
    select bib_id, 'clc' as scheme, 1 as preference, clc_class as class_number, '^[A-Z]' as shape
    from records where clc_class is not null
    union all
    select bib_id, 'lc', 2, lc_class, '^[A-Z]{1,3}[0-9]' from records where lc_class is not null
    union all
    select bib_id, 'dewey', 3, dewey_class, '^[0-9]{3}' from records where dewey_class is not null
),

keyed as (
    select
        bib_id,
        scheme,
        preference,
        class_number,
        class_key,
        regexp_matches(class_key, shape) as looks_like_scheme
    from (
        select *, regexp_replace(upper(class_number), '[^0-9A-Z]', '', 'g') as class_key
        from classes
    ) as cleaned
),

matched as (
    select
        k.bib_id,
        k.scheme,
        k.class_number,
        k.class_key,
        p.discipline_code,
        row_number() over (
            partition by k.bib_id
            order by p.discipline_code is null, k.preference, length(p.class_prefix) desc
        ) as rank
    from keyed as k
    left join prefixes as p
        on p.scheme = k.scheme
        and k.looks_like_scheme
        and starts_with(k.class_key, p.class_prefix)
),

sensitive as (
    -- a title in a class kept out of reader profiles and recommendations: its CLC class
    -- number, or its discipline, starts with a prefix the library lists
    select
        m.bib_id,
        max(case when (m.scheme = 'clc' and starts_with(m.class_key, s.class_prefix))
                      or starts_with(m.discipline_code, s.class_prefix)
                 then 1 else 0 end) = 1 as is_sensitive
    from matched as m
    cross join core.dim_sensitive_class as s
    where m.rank = 1
    group by m.bib_id
),

final as (
    select
        r.bib_id,
        r.title,
        r.author,
        r.publisher,
        cast(r.publication_year as bigint) as publication_year,
        r.language,
        r.isbn,
        m.scheme as classification_scheme,
        m.class_number,
        m.discipline_code,
        coalesce(sensitive.is_sensitive, false) as is_sensitive
    from records as r
    left join matched as m on m.bib_id = r.bib_id and m.rank = 1
    left join sensitive on sensitive.bib_id = r.bib_id
)

select * from final
