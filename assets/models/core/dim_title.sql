-- One row per bibliographic record, with the classification used for its discipline
-- (CLC first, then LC, then Dewey) and the discipline as the CLC top class letter.
with records as (
    select * from staging.bib_record
),

classified as (
    select
        *,
        case
            when clc_class is not null then 'clc'
            when lc_class is not null then 'lc'
            when dewey_class is not null then 'dewey'
        end as classification_scheme,
        coalesce(clc_class, lc_class, dewey_class) as class_number
    from records
),

final as (
    select
        bib_id,
        title,
        author,
        publisher,
        cast(publication_year as bigint) as publication_year,
        language,
        isbn,
        classification_scheme,
        class_number,
        case when clc_class is not null then upper(substr(clc_class, 1, 1)) end as discipline_code
    from classified
)

select * from final
