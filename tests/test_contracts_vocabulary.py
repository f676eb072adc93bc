"""The contracts' vocabulary (schemas/vocabulary.py) and the facts taken from the contracts: each is
declared once, and what restates one (a folder, a feed, a reason code) agrees with it."""

from __future__ import annotations

import re

import pytest
import yaml

from assets.feeds import FEEDS
from assets.parsing import Reason
from schemas import CONTRACTS_DIR
from schemas.model import ContractError, load_contract, load_contracts
from schemas.roles import load_roles
from schemas.vocabulary import DAY, LAYERS, MONTH, QUARANTINE, SOURCES

KEY_OF = {DAY: r"\d{4}-\d{2}-\d{2}", MONTH: r"\d{4}-\d{2}"}


def test_every_contract_folder_is_a_layer():
    assert {p.name for p in CONTRACTS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")} == set(LAYERS)


def test_the_sources_are_the_quarantine_tables_and_the_feeds_sources():
    quarantine = {c.table for c in load_contracts().values() if c.layer == QUARANTINE}
    assert quarantine == set(SOURCES)
    assert [f.source for f in FEEDS if f.source not in SOURCES] == []
    assert set(SOURCES) == {f.source for f in FEEDS}


def test_a_feed_is_partitioned_as_the_contracts_of_all_its_tables_say():
    for feed in FEEDS:
        partitionings = {load_contracts()[f"staging.{t}"].partitioning for t in feed.tables}
        assert partitionings == {feed.partitioning}, feed.name


@pytest.mark.parametrize("feed", [f for f in FEEDS if f.partitioning is not None], ids=lambda f: f.name)
def test_a_partitioned_feeds_file_names_carry_a_key_of_its_partitioning(feed):
    for fmt in feed.formats:
        key = re.search(r"\(\?P<key>(.*?)\)", fmt.pattern).group(1)
        assert key == KEY_OF[feed.partitioning], (feed.name, fmt.pattern)


def test_the_reason_codes_are_the_quarantine_contracts_allowed_values():
    for contract in load_contracts().values():
        if contract.layer == QUARANTINE:
            assert contract.allowed_values("reason") == tuple(Reason), contract.qualified_name


def test_roles_read_only_declared_layers():
    for role in load_roles().values():
        assert set(role.layers) <= set(LAYERS), role.name


def _contract_with(tmp_path, layer: str, partitioning: str | None = None):
    """dim_zone's contract written as a table of ``layer``, partitioned as given."""
    document = yaml.safe_load((CONTRACTS_DIR / "core" / "dim_zone.odcs.yaml").read_text(encoding="utf-8"))
    document["schema"][0]["physicalName"] = f"{layer}.dim_zone"
    document["customProperties"] = [{"property": "layer", "value": layer}]
    if partitioning:
        document["customProperties"].append({"property": "partitioning", "value": partitioning})
    path = tmp_path / layer / "dim_zone.odcs.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def test_a_contract_in_an_unknown_layer_is_refused(tmp_path):
    with pytest.raises(ContractError, match=r"at `customProperties.layer`: 'attic' is not one of staging"):
        load_contract(_contract_with(tmp_path, "attic"))


def test_a_contract_with_an_unknown_partitioning_is_refused(tmp_path):
    path = _contract_with(tmp_path, "core", "week")
    with pytest.raises(ContractError, match=r"at `customProperties.partitioning`: 'week' is not one of day, month"):
        load_contract(path)


def test_an_allowed_value_list_is_asked_of_a_column_that_has_one():
    events = load_contracts()["staging.circulation_event"]
    assert "issue" in events.allowed_values("event_type")
    with pytest.raises(KeyError, match="branch_code lists no allowed values"):
        events.allowed_values("branch_code")
