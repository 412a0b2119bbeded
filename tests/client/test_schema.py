"""The client's typed results name the fields the server's OpenAPI schema documents, with
the same nullability. (The gate and lineage answers are free-form objects in the schema; the
live tests in test_client.py build GateResult, CheckRow and Lineage from real answers.)"""

import types
from dataclasses import fields
from typing import get_type_hints

import pytest
from drf_spectacular.generators import SchemaGenerator

from pedigree_client import DatasetVersion, Decision, EvaluationRun, Evaluations, Version

COMPONENTS = [
    (Version, "Version"),
    (DatasetVersion, "DatasetVersion"),
    (EvaluationRun, "EvaluationRun"),
    (Decision, "GateDecision"),
]


@pytest.fixture(scope="module")
def components() -> dict:
    """The components of the schema `/api/schema/` serves."""
    return SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]


def _nullable(hint) -> bool:
    return isinstance(hint, types.UnionType) and type(None) in hint.__args__


@pytest.mark.parametrize(("cls", "component"), COMPONENTS, ids=lambda x: getattr(x, "__name__", x))
def test_every_field_is_in_the_schema_with_its_nullability(components, cls, component):
    properties = components[component]["properties"]
    hints = get_type_hints(cls)
    missing = [field.name for field in fields(cls) if field.name not in properties]
    assert not missing, f"{cls.__name__} fields not in the {component} schema: {missing}"
    mismatched = [
        field.name
        for field in fields(cls)
        if _nullable(hints[field.name]) != bool(properties[field.name].get("nullable"))
    ]
    assert not mismatched, f"{cls.__name__} fields whose nullability differs: {mismatched}"


def test_evaluations_read_the_answer_of_the_evaluations_endpoint(components):
    """`Evaluations` is the 202 answer of POST /versions/{ref}/evaluations/: its `version`,
    its `runs` as `EvaluationRun`s, and `created` from each run's flag."""
    answer = components["VersionEvaluations"]["properties"]
    assert answer["version"]["type"] == "string"
    assert answer["runs"]["items"]["$ref"] == "#/components/schemas/RequestedRun"
    run = components["RequestedRun"]["properties"]
    assert run["created"]["type"] == "boolean" and not run["created"].get("nullable")
    assert {field.name for field in fields(EvaluationRun)} <= set(run)
    assert [field.name for field in fields(Evaluations)] == ["version", "runs", "created"]
