"""Branch pruning of the column lineage on small SQL texts whose answers are known by hand: a
value picked by a CASE on a UNION's literal discriminator reads only the branches that can
satisfy the condition."""

import pytest

from lineage.columns import sql_lineage

UNION = """
with activity as (
    select issue_date as day, 'loan' as kind, patron_pid, 1 as amount, renew_count as extra from core.fact_loan
    union all
    select event_date, 'visit', patron_pid, 1, 0 from core.fact_gate_event where result = 'PASS'
    union all
    select event_date, case when zero_hit then 'zero_hit_search' else 'search' end, patron_pid, hit_count, 0
    from core.fact_search
    union all
    select usage_month, 'request', null, usage_count, 0 from core.fact_counter_usage
){more}
"""


def inputs(sql: str, column: str) -> set[tuple[str, str]]:
    return {(e.input_table.split(".")[1], e.input_column) for e in sql_lineage(sql).fields[column]}


def kinds(sql: str, column: str) -> dict[tuple[str, str], str]:
    return {(e.input_table.split(".")[1], e.input_column): e.subtype for e in sql_lineage(sql).fields[column]}


@pytest.mark.parametrize("expression, expected", [
    ("sum(case when kind = 'loan' then amount else 0 end)", {("fact_loan", "issue_date")}),
    ("sum(case when kind = 'loan' then extra else null end)", {("fact_loan", "issue_date"), ("fact_loan", "renew_count")}),
    ("sum(case when kind = 'visit' then amount end)",
     {("fact_gate_event", "event_date"), ("fact_gate_event", "result")}),
    ("sum(case when kind in ('search', 'zero_hit_search') then amount else 0 end)",
     {("fact_search", "event_date"), ("fact_search", "hit_count")}),
    ("sum(case when kind = 'zero_hit_search' then amount else 0 end)",
     {("fact_search", "event_date"), ("fact_search", "hit_count"), ("fact_search", "zero_hit")}),
    ("count(distinct case when kind in ('loan', 'visit') then patron_pid end)",
     {("fact_loan", "issue_date"), ("fact_loan", "patron_pid"), ("fact_gate_event", "event_date"),
      ("fact_gate_event", "result"), ("fact_gate_event", "patron_pid")}),
])
def test_a_guarded_aggregate_reads_only_the_branches_that_can_satisfy_it(expression, expected):
    sql = UNION.format(more=f"\nselect day, {expression} as figure from activity group by day")
    assert inputs(sql, "figure") == expected


def test_the_discriminator_renamed_through_ctes_still_prunes():
    sql = UNION.format(more=""",
renamed as (select day as d, kind as k2, amount as a from activity),
deeper as (select d, upper(k2) as k3, a from renamed)
select d, sum(case when k3 = 'LOAN' then a else 0 end) as figure, sum(case when k2x = 'loan' then a end) as other
from (select d, k3, k3 as k2x, a from deeper) as s group by d""")
    # upper() is not evaluated: the branch it cannot decide is kept, never dropped.
    assert ("fact_counter_usage", "usage_count") in inputs(sql, "figure")
    sql = UNION.format(more=""",
renamed as (select day as d, kind as k2, amount as a from activity),
deeper as (select d, k2 as k3, a from renamed)
select d, sum(case when k3 = 'loan' then a else 0 end) as figure from deeper group by d""")
    assert inputs(sql, "figure") == {("fact_loan", "issue_date")}


def test_a_branch_whose_discriminator_can_give_either_value_stays_with_its_condition():
    sql = UNION.format(more="\nselect day, sum(case when kind = 'zero_hit_search' then amount else 0 end) as figure "
                            "from activity group by day")
    assert kinds(sql, "figure")[("fact_search", "zero_hit")] == "CONDITIONAL"
    assert kinds(sql, "figure")[("fact_search", "hit_count")] == "AGGREGATION"
    # both outcomes of the search branch count as searches: zero_hit decides nothing there
    sql = UNION.format(more="\nselect day, sum(case when kind in ('search', 'zero_hit_search') then amount end) "
                            "as figure from activity group by day")
    assert ("fact_search", "zero_hit") not in inputs(sql, "figure")


def test_an_undecidable_condition_keeps_every_branch():
    sql = UNION.format(more="\nselect day, sum(case when kind like 'lo%' then amount else 0 end) as figure "
                            "from activity group by day")
    read = {table for table, _ in inputs(sql, "figure")}
    assert read == {"fact_loan", "fact_gate_event", "fact_search", "fact_counter_usage"}


def test_a_value_from_a_joined_table_names_the_join_keys():
    sql = """select l.loan_id, i.bib_id from core.fact_loan as l left join core.dim_item as i
             on i.item_number = l.item_number"""
    assert inputs(sql, "bib_id") == {("dim_item", "bib_id"), ("dim_item", "item_number"), ("fact_loan", "item_number")}
    assert inputs(sql, "loan_id") == {("fact_loan", "loan_id")}
