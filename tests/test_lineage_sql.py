"""Column lineage of the SQL models from sqlglot, on the models themselves and on small SQL whose
answers are known by hand: every output column has lineage, a UNION branch's literal is decided by
its condition, a COUNT(*) by its filters and groups, a hashed key is masking."""



import pytest
import sqlglot
from sqlglot import exp

from assets.models.sql_model import discover_models
from lineage.columns import sql_lineage
from schemas.model import contract_for



def _edges(model: str) -> set[tuple]:
    sql = next(m.sql for m in discover_models() if m.qualified_name == model)
    lineage = sql_lineage(sql)
    return {(e.output_column, e.input_table, e.input_column, e.type, e.subtype) for e in lineage.edges()}


@pytest.mark.parametrize("model, edge", [
    ("marts.space_utilisation", ("seat_capacity", "core.dim_zone", "seat_capacity", "DIRECT", "IDENTITY")),
    ("marts.space_utilisation", ("occupancy_peak", "core.fact_gate_event", "direction", "DIRECT", "AGGREGATION")),
    ("marts.space_utilisation", ("occupancy_peak", "core.fact_gate_event", "event_at", "INDIRECT", "WINDOW")),
    ("marts.space_utilisation", (None, "core.fact_gate_event", "result", "INDIRECT", "FILTER")),
    ("marts.space_utilisation", (None, "core.fact_gate_event", "event_hour", "INDIRECT", "GROUP_BY")),
    ("core.fact_loan", ("bib_id", "core.dim_item", "bib_id", "DIRECT", "IDENTITY")),
    ("core.fact_loan", ("patron_pid", "staging.circulation_event", "patron_pid", "DIRECT", "IDENTITY")),
    ("core.fact_loan", ("returned_at", "staging.circulation_event", "event_at", "DIRECT", "AGGREGATION")),
    ("core.fact_loan", (None, "core.dim_item", "item_number", "INDIRECT", "JOIN")),
    ("core.dim_item", ("barcode", "staging.item", "barcode", "DIRECT", "IDENTITY")),
    ("core.dim_patron", ("enrolment_year", "staging.patron", "enrolment_year", "DIRECT", "TRANSFORMATION")),
    ("core.dim_title", ("discipline_code", "core.discipline_map", "discipline_code", "DIRECT", "IDENTITY")),
    ("core.dim_title", ("class_number", "staging.bib_record", "clc_class", "DIRECT", "IDENTITY")),
    ("core.dim_title", ("class_number", "core.discipline_map", "class_prefix", "INDIRECT", "JOIN")),
    ("core.fact_counter_usage", ("issn", "staging.counter_usage", "print_issn", "DIRECT", "TRANSFORMATION")),
    ("core.fact_eresource_access", ("event_hour", "staging.ezproxy_access", "accessed_at", "DIRECT", "TRANSFORMATION")),
    ("core.fact_eresource_access", (None, "staging.ezproxy_access", "is_consultation", "INDIRECT", "FILTER")),
    ("core.fact_gate_count", ("zone_code", "core.dim_gate", "zone_code", "DIRECT", "IDENTITY")),
    ("core.fact_gate_count", ("entries", "staging.gate_count", "counted_at", "INDIRECT", "WINDOW")),
    ("core.fact_gate_event", ("branch_code", "core.dim_gate", "branch_code", "DIRECT", "IDENTITY")),
    ("core.fact_gate_event", (None, "staging.gate_event", "gate_code", "INDIRECT", "JOIN")),
    ("core.fact_search", ("query_normalised", "staging.search", "query_normalised", "DIRECT", "IDENTITY")),
    ("core.dim_title", ("classification_scheme", "staging.bib_record", "lc_class", "INDIRECT", "CONDITIONAL")),
])
def test_sqlglot_column_lineage_of_each_model(model, edge):
    assert edge in _edges(model)


def test_every_model_has_lineage_for_every_output_column():
    for model in discover_models():
        lineage = sql_lineage(model.sql)
        assert set(lineage.fields) == set(contract_for(model.qualified_name).column_names), model.qualified_name
        # A column with no input is a value written in the SQL (a parameter): nothing it reads.
        for column in [c for c, edges in lineage.fields.items() if not edges]:
            innermost = sqlglot.parse_one(lineage.expressions[column][-1], dialect="duckdb")
            assert not innermost.find(exp.Column), f"{model.qualified_name}.{column}"


def test_a_literal_of_a_union_branch_is_decided_by_the_branch_condition():
    lineage = sql_lineage(next(m.sql for m in discover_models() if m.name == "dim_title"))
    edges = {(e.input_column, e.subtype, e.description) for e in lineage.fields["classification_scheme"]
             if e.subtype != "JOIN"}
    assert edges == {("clc_class", "CONDITIONAL", "decides 'clc' (the condition of its UNION branch)"),
                     ("lc_class", "CONDITIONAL", "decides 'lc' (the condition of its UNION branch)"),
                     ("dewey_class", "CONDITIONAL", "decides 'dewey' (the condition of its UNION branch)")}
    assert lineage.expressions["classification_scheme"] == ("'clc'", "'lc'", "'dewey'")


def test_a_count_star_reads_its_filters_and_groups_and_a_parameter_reads_nothing():
    lineage = sql_lineage("""
        select 'seated' as kind, 0.5 as ratio, count(*) as zones from core.dim_zone
        where seat_capacity > 0 group by branch_code
        union all
        select 'standing', 0.5, count(*) from core.dim_zone where seat_capacity = 0 group by branch_code""")
    edges = {c: {(e.input_column, e.type, e.subtype) for e in lineage.fields[c]} for c in lineage.fields}
    assert edges["kind"] == {("seat_capacity", "INDIRECT", "CONDITIONAL")}
    assert edges["zones"] == {("seat_capacity", "INDIRECT", "FILTER"), ("branch_code", "INDIRECT", "GROUP_BY")}
    # The same in every branch: a value of the SQL itself, which `shuku trace` ends at.
    assert edges["ratio"] == set() and lineage.expressions["ratio"] == ("0.5",)


def test_a_hashed_key_is_masking_and_a_copy_is_not():
    fact_loan = {(e.output_column, e.input_column): e.masking for e in sql_lineage(
        next(m.sql for m in discover_models() if m.name == "fact_loan")).edges()}
    assert fact_loan[("loan_id", "item_number")] is True
    assert fact_loan[("patron_pid", "patron_pid")] is False
