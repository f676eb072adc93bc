"""The API against its own OpenAPI description: schemathesis generates requests for every operation
(bounded: a few examples each) and checks status codes, content types and response bodies over HTTP."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from pipelines.api import create_app, running
from pipelines.api_callers import ApiLimits
from pipelines.openapi import openapi_document
from tests.published import copied_home, published_home
from schemas.model import load_contracts
from warehouse.tokens import create_token

LIMITS = ApiLimits(rate_per_s=10_000, burst=10_000)
schema = schemathesis.openapi.from_dict(openapi_document(load_contracts(), LIMITS))
# Bounded: generated examples (valid and invalid) for every operation, without the coverage phase's
# exhaustive boundary cases (minutes on 2 cores for 59 operations).
schema.config.phases.update(phases=["examples", "fuzzing"])


def test_the_description_validates_and_has_a_schema_per_contract():
    schema.validate()     # against the OpenAPI 3.0 meta-schema; raises on any error
    document = schema.raw_schema
    for name, contract in load_contracts().items():
        assert set(document["components"]["schemas"][name]["properties"]) == set(contract.column_names)
        assert f"/api/v1/datasets/{contract.layer}/{contract.table}/rows" in document["paths"]


@pytest.fixture(scope="module")
def served(tmp_path_factory, library):
    # A copy: the token and the access log written here must not reach the session's shared home.
    home = copied_home(published_home(tmp_path_factory, library), tmp_path_factory.mktemp("schemathesis") / "home")
    token = create_token(home, "privacy_officer", "schemathesis")[1]
    with running(create_app(home, LIMITS)) as url:
        assert requests.get(url + "/openapi.json", timeout=30).json() == schema.raw_schema
        yield url, {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_conforms_to_the_description(case, served):
    url, headers = served
    # A well-formed SQL string or column name may still name nothing: the API answers 422, as described,
    # so "every schema-valid request succeeds" is not this API's contract. Every other check runs.
    case.call_and_validate(base_url=url, headers=headers, excluded_checks=[positive_data_acceptance])
