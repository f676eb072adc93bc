"""The contract linter on the real contracts (clean) and on a contract breaking every rule."""

from __future__ import annotations

import copy

import yaml
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.cli_contracts import pipeline_tables
from schemas import CONTRACTS_DIR
from schemas.lint import lint
from schemas.model import load_contract, load_contracts


def test_real_contracts_are_clean_and_match_what_the_pipeline_writes():
    assert [str(f) for f in lint(load_contracts(), pipeline_tables())] == []


def _prop(name, ptype, classification="internal", description="Something.", **custom):
    prop = {"name": name, "logicalType": "string", "physicalType": ptype, "description": description,
            "classification": classification}
    if custom:
        prop["customProperties"] = [{"property": k, "value": v} for k, v in custom.items()]
    return prop


def _bad_contract(tmp_path):
    data = yaml.safe_load((CONTRACTS_DIR / "core" / "fact_search.odcs.yaml").read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    table = data["schema"][0]
    table["name"], table["physicalName"], table["description"] = "BadTable", "core.BadTable", ""
    table["properties"] = [
        _prop("EventTime", "TIMESTAMP", pii="none"),                          # 0 snake-case, type-suffix
        _prop("opened_at", "VARCHAR", pii="none"),                            # 1 suffix-type
        _prop("visit_day", "DATE", pii="none"),                               # 2 type-suffix
        _prop("loan_count", "DOUBLE", pii="none"),                            # 3 suffix-type
        _prop("reader_id", "BIGINT", pii="none"),                             # 4 suffix-type
        _prop("note", "VARCHAR", description="", pii="none"),                 # 5 described
        _prop("shelf", "VARCHAR"),                                            # 6 classified
        _prop("card_hash", "VARCHAR", "confidential", pii="quasi", masking="rot13"),   # 7 masking-known
        _prop("email", "VARCHAR", "confidential", pii="direct"),              # 8 direct-protected
        _prop("postcode", "VARCHAR", "internal", pii="quasi"),                # 9 quasi-confidential
        _prop("college", "VARCHAR", "internal", pii="quasi", piiJustification="Large groups."),   # justified
        _prop("usage_month", "DATE", pii="none"),                             # fine
        _prop("date_key", "DATE", pii="none"),                                # fine
        _prop("token", "VARCHAR", "restricted", pii="direct"),                # fine: restricted
    ]
    path = tmp_path / "core" / "BadTable.odcs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def test_every_rule_fires_on_a_bad_contract(tmp_path):
    contract = load_contract(_bad_contract(tmp_path))
    findings = lint([contract], tables={"core.fact_loan"})
    got = {(f.rule, f.path) for f in findings}
    p = "schema[0].properties"
    assert got == {
        ("snake-case", "schema[0].name"),
        ("described", "schema[0].description"),
        ("snake-case", f"{p}[0].name"), ("type-suffix", f"{p}[0].name"),
        ("suffix-type", f"{p}[1].physicalType"),
        ("type-suffix", f"{p}[2].name"),
        ("suffix-type", f"{p}[3].physicalType"),
        ("suffix-type", f"{p}[4].physicalType"),
        ("described", f"{p}[5].description"),
        ("classified", f"{p}[6].customProperties"),
        ("masking-known", f"{p}[7].customProperties"),
        ("direct-protected", f"{p}[8].classification"),
        ("quasi-confidential", f"{p}[9].classification"),
        ("table-contract", "(file)"),
        ("contract-table", "schema[0].physicalName"),
    }
    assert all(f.file.endswith(("BadTable.odcs.yaml", "fact_loan.odcs.yaml")) for f in findings)
    by_rule = {f.rule: f.message for f in findings}
    assert "core.fact_loan" in by_rule["table-contract"] and "core.BadTable" in by_rule["contract-table"]
    assert "postcode" in by_rule["quasi-confidential"] and "piiJustification" in by_rule["quasi-confidential"]


def test_cli_lint_exits_1_on_findings_and_0_when_clean(tmp_path):
    _bad_contract(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(main, ["contracts", "lint", "--root", str(tmp_path)])
    assert bad.exit_code == 1
    assert "BadTable.odcs.yaml: at `schema[0].properties[8].classification`: [direct-protected]" in bad.stdout
    good = runner.invoke(main, ["contracts", "lint"])
    assert good.exit_code == 0, good.output


def test_docs_describe_every_table_and_who_sees_each_column(tmp_path):
    result = CliRunner().invoke(main, ["contracts", "docs", "--out", str(tmp_path / "dict")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "dict" / "data-dictionary.md").read_text(encoding="utf-8")
    page = (tmp_path / "dict" / "data-dictionary.html").read_text(encoding="utf-8")
    for name in load_contracts():
        assert f"## {name}" in md and f'id="{name}"' in page
    assert "| patron_pid | VARCHAR | no | confidential | quasi | hmac | data_librarian, privacy_officer |" in md
    assert "- **retention**: 2 years" in md and "- **owner**: data-librarians" in md
    assert "http" not in page and "<script" not in page
