"""The official OpenLineage JSON Schemas (tests/data/openlineage, vendored) and an event's
errors against them: the event against its schemaURL, every facet against its own."""

import json
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SPECS = Path(__file__).parent / "data" / "openlineage"


def official_registry() -> Registry:
    """Every vendored OpenLineage schema, by its `$id`."""
    paths = [SPECS / "OpenLineage.json", *sorted((SPECS / "facets").glob("*.json"))]
    resources = [Resource.from_contents(json.loads(p.read_text(encoding="utf-8"))) for p in paths]
    return Registry().with_resources((r.id(), r) for r in resources)


def schema_errors(event: dict, registry: Registry) -> list[str]:
    """The event against its schemaURL, and every facet against its own `_schemaURL`."""
    def check(instance: dict, url: str, where: str) -> list[str]:
        validator = Draft202012Validator({"$ref": url}, registry=registry)
        return [f"{where}: {e.message}" for e in validator.iter_errors(instance)]

    errors = check(event, event["schemaURL"], event["job"]["name"])
    groups = [("run", event["run"].get("facets")), ("job", event["job"].get("facets"))]
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        for key in ("facets", "inputFacets", "outputFacets"):
            groups.append((f"{dataset['name']} {key}", dataset.get(key)))
    for where, facets in groups:
        for name, facet in (facets or {}).items():
            errors += check(facet, facet["_schemaURL"], f"{where}.{name}")
    return errors
