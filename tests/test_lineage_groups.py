"""What decides a group's value and what only decides which groups exist, on small SQL texts
whose answers are known by hand: an inner join that keeps or drops whole groups (matched one to
one on the columns the groups are keyed by) is a dataset edge of the table, not an input of its
counts; one that drops some rows of a group is an input of them."""

from lineage.columns import sql_lineage

BORROWED = """
with allowed as (
    select bib_id from core.dim_title where not is_sensitive
),
borrowed as (
    select distinct fact_loan.patron_pid, fact_loan.bib_id
    from core.fact_loan as fact_loan
    inner join {joined} on {condition}
)
select {keys}, count(*) as readers from borrowed group by {keys}
"""


def inputs(sql: str, column: str) -> set[str]:
    return {f"{e.input_table}.{e.input_column}" for e in sql_lineage(sql).fields[column]}


def rows(sql: str) -> set[str]:
    return {f"{e.input_table}.{e.input_column}" for e in sql_lineage(sql).dataset}


def test_a_filter_on_the_group_key_decides_which_groups_exist_not_their_counts():
    sql = BORROWED.format(joined="allowed", condition="allowed.bib_id = fact_loan.bib_id", keys="bib_id")
    assert inputs(sql, "readers") == {"core.fact_loan.bib_id", "core.fact_loan.patron_pid"}
    assert {"core.dim_title.is_sensitive", "core.dim_title.bib_id"} <= rows(sql)


def test_a_filter_on_another_column_decides_the_counts():
    # grouped by reader: which titles are allowed changes how many a reader has
    sql = BORROWED.format(joined="allowed", condition="allowed.bib_id = fact_loan.bib_id", keys="patron_pid")
    assert {"core.dim_title.is_sensitive", "core.dim_title.bib_id"} <= inputs(sql, "readers")


def test_a_join_that_can_repeat_rows_decides_the_counts():
    # dim_item has many copies per title: joined on bib_id it multiplies a title's rows
    sql = BORROWED.format(joined="core.dim_item as items", condition="items.bib_id = fact_loan.bib_id", keys="bib_id")
    assert "core.dim_item.bib_id" in inputs(sql, "readers")


def test_a_condition_beyond_the_key_decides_the_counts():
    sql = BORROWED.format(joined="core.dim_title as titles",
                          condition="titles.bib_id = fact_loan.bib_id and titles.publication_year > 2000", keys="bib_id")
    assert "core.dim_title.publication_year" in inputs(sql, "readers")


def test_a_rank_among_groups_depends_on_which_groups_exist():
    grouped = BORROWED.format(joined="allowed", condition="allowed.bib_id = fact_loan.bib_id", keys="bib_id")
    body = grouped.rsplit("select bib_id, count(*)", 1)[0]
    sql = body + """,
counted as (select bib_id, count(*) as readers from borrowed group by bib_id)
select bib_id, readers, row_number() over (order by readers desc, bib_id) as place from counted"""
    assert "core.dim_title.is_sensitive" not in inputs(sql, "readers")
    assert "core.dim_title.is_sensitive" in inputs(sql, "place")
