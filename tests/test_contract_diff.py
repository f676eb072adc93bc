"""Contract diff: each kind of change classified breaking or not, on copies of the real contracts."""

from __future__ import annotations

import shutil

import pytest
import yaml
from click.testing import CliRunner

from pipelines.cli import main
from schemas import CONTRACTS_DIR
from schemas.diff import diff_paths


@pytest.fixture
def trees(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for root in (old, new):
        shutil.copytree(CONTRACTS_DIR / "core", root / "core")
        (root / "staging").mkdir()
        shutil.copy(CONTRACTS_DIR / "staging" / "gate_event.odcs.yaml", root / "staging")
    return old, new


def _edit(root, rel, change):
    path = root / rel
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data["schema"][0]["properties"], data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _col(props, name):
    return next(p for p in props if p["name"] == name)


def test_identical_trees_have_no_changes(trees):
    assert diff_paths(*trees) == []


def _kinds(old, new):
    return {(c.table, c.column, c.kind, c.breaking) for c in diff_paths(old, new)}


BREAKING = [
    ("core/fact_loan.odcs.yaml", lambda p, d: p.remove(_col(p, "loan_days")), ("core.fact_loan", "loan_days", "column removed")),
    ("core/fact_loan.odcs.yaml", lambda p, d: _col(p, "renew_count").update(physicalType="INTEGER"), ("core.fact_loan", "renew_count", "type changed")),
    ("core/fact_loan.odcs.yaml", lambda p, d: _col(p, "due_date").update(required=True), ("core.fact_loan", "due_date", "required added")),
    ("core/fact_loan.odcs.yaml", lambda p, d: _col(p, "patron_pid").update(classification="internal"), ("core.fact_loan", "patron_pid", "classification lowered")),
    ("staging/gate_event.odcs.yaml", lambda p, d: _col(p, "result")["quality"][0]["arguments"].update(validValues=["PASS"]), ("staging.gate_event", "result", "enum narrowed")),
    ("core/fact_loan.odcs.yaml", lambda p, d: p.append({"name": "shelf_code", "logicalType": "string", "physicalType": "VARCHAR", "description": "Shelf.", "classification": "internal", "required": True}), ("core.fact_loan", "shelf_code", "required column added")),
    ("core/fact_loan.odcs.yaml", lambda p, d: _col(p, "patron_pid")["customProperties"].pop(), ("core.fact_loan", "patron_pid", "masking removed")),
]

NOT_BREAKING = [
    ("core/fact_loan.odcs.yaml", lambda p, d: p.append({"name": "shelf_code", "logicalType": "string", "physicalType": "VARCHAR", "description": "Shelf.", "classification": "internal"}), ("core.fact_loan", "shelf_code", "column added")),
    ("core/fact_loan.odcs.yaml", lambda p, d: _col(p, "bib_id").update(description="The title's record id."), ("core.fact_loan", "bib_id", "description changed")),
    ("core/fact_loan.odcs.yaml", lambda p, d: _col(p, "bib_id").update(classification="confidential"), ("core.fact_loan", "bib_id", "classification raised")),
    ("staging/gate_event.odcs.yaml", lambda p, d: _col(p, "result")["quality"][0]["arguments"]["validValues"].append("ERROR"), ("staging.gate_event", "result", "enum widened")),
]


@pytest.mark.parametrize("rel, change, expected", BREAKING, ids=[b[2][2] for b in BREAKING])
def test_breaking_changes(trees, rel, change, expected):
    old, new = trees
    _edit(new, rel, change)
    assert (*expected, True) in _kinds(old, new)


@pytest.mark.parametrize("rel, change, expected", NOT_BREAKING, ids=[b[2][2] for b in NOT_BREAKING])
def test_changes_that_do_not_break(trees, rel, change, expected):
    old, new = trees
    _edit(new, rel, change)
    kinds = _kinds(old, new)
    assert (*expected, False) in kinds and not [k for k in kinds if k[3]]


def test_table_removed_is_breaking_and_added_is_not(trees):
    old, new = trees
    (new / "core" / "fact_search.odcs.yaml").unlink()
    (old / "staging" / "gate_event.odcs.yaml").unlink()
    kinds = _kinds(old, new)
    assert ("core.fact_search", None, "table removed", True) in kinds
    assert ("staging.gate_event", None, "table added", False) in kinds


def test_cli_diff_files_and_folders_exit_codes(trees):
    old, new = trees
    runner = CliRunner()
    same = runner.invoke(main, ["contracts", "diff", str(old), str(new)])
    assert same.exit_code == 0, same.output
    _edit(new, "core/fact_loan.odcs.yaml", lambda p, d: _col(p, "bib_id").update(description="Record id."))
    soft = runner.invoke(main, ["contracts", "diff", str(old / "core/fact_loan.odcs.yaml"), str(new / "core/fact_loan.odcs.yaml")])
    assert soft.exit_code == 0 and "ok       core.fact_loan.bib_id: description changed" in soft.stdout
    _edit(new, "core/fact_loan.odcs.yaml", lambda p, d: p.remove(_col(p, "loan_days")))
    hard = runner.invoke(main, ["contracts", "diff", str(old), str(new)])
    assert hard.exit_code == 1
    assert "BREAKING core.fact_loan.loan_days: column removed" in hard.stdout
    assert "1 breaking change(s)" in hard.stderr
    empty = runner.invoke(main, ["contracts", "diff", str(old / "core"), str(new / "nothing_here")])
    assert empty.exit_code == 2
