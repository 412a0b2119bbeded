"""The OpenAPI schema says the truth: it generates without a warning, documents the one error
envelope on every operation, and types the answers built as plain data (gate, lineage,
registration) so that real answers, redacted placeholders included, validate against it."""

import importlib
import inspect

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.core.management import call_command
from rest_framework import serializers

from tests.api.conftest import SCHEMA
from tests.conftest import digest

pytestmark = pytest.mark.django_db

API_MODULES = [
    "registry.api.serializers",
    "registry.api.artefacts",
    "lineage.api.serializers",
    "licensing.api.serializers",
    "evaluators.api.serializers",
]


def raw() -> dict:
    return SCHEMA.raw_schema


def test_the_schema_generates_and_validates_without_a_warning(tmp_path):
    """`manage.py spectacular --validate --fail-on-warn`: an untyped field, an enum name
    collision or an invalid document fails here, not in a client generator."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", tmp_path / "s.yaml")


def test_every_operation_documents_the_error_envelope():
    paths = raw()["paths"]
    missing = []
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in ("get", "post", "patch", "put", "delete"):
                continue
            expected = {"400", "401", "403", "429", "503"}
            if "{" in path:
                expected.add("404")
            if method != "get":
                expected |= {"409", "413"}
            responses = operation["responses"]
            for status in expected:
                content = responses.get(status, {}).get("content", {})
                if status == "409" and path.endswith("/promote/"):
                    continue  # the refusal with its decision, checked below
                ref = content.get("application/json", {}).get("schema", {}).get("$ref")
                if ref != "#/components/schemas/Error":
                    missing.append(f"{method.upper()} {path} {status}")
    assert missing == []
    envelope = raw()["components"]["schemas"]["Error"]
    assert envelope["required"] == ["error"]
    assert envelope["properties"]["error"]["required"] == ["status", "code", "message"]
    assert "Retry-After" in paths["/api/v1/versions/"]["get"]["responses"]["429"]["headers"]
    refusal = paths["/api/v1/versions/{id}/promote/"]["post"]["responses"]["409"]
    assert refusal["content"]["application/json"]["schema"]["$ref"].endswith("/GateRefusal")


def test_error_answers_keep_the_envelope_they_are_documented_with(
    exchange, catalogue, engineer, compliance_user
):
    assert exchange(None, "GET", "/api/v1/versions/", "/api/v1/versions/").status_code == 401
    missing = exchange(engineer, "GET", "/api/v1/versions/{id}/", "/api/v1/versions/999999/")
    assert missing.status_code == 404
    hidden = catalogue["versions"][2]
    refused = exchange(engineer, "GET", "/api/v1/versions/{id}/", f"/api/v1/versions/{hidden}/")
    assert refused.status_code == 404
    invalid = exchange(engineer, "POST", "/api/v1/models/", "/api/v1/models/", json={"x": 1})
    assert invalid.status_code == 400
    assert invalid.json["error"]["fields"]
    nowhere = exchange(
        engineer,
        "POST",
        "/api/v1/artefacts/inspect/",
        "/api/v1/artefacts/inspect/",
        json={"path": "uploads"},
    )
    assert nowhere.status_code == 404


def nullable_relations_not_marked() -> list[str]:
    """Read-only related fields over a nullable column (or a path through one) that the
    serializer, and so the schema, does not mark nullable."""
    found = []
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, serializers.ModelSerializer) or cls.__module__ != module_name:
                continue
            for field_name, field in cls().fields.items():
                if not isinstance(field, serializers.RelatedField) or field.allow_null:
                    continue
                model, nullable = cls.Meta.model, False
                for part in field.source.split("."):
                    try:
                        column = model._meta.get_field(part)
                    except FieldDoesNotExist:
                        break
                    nullable |= bool(getattr(column, "null", False))
                    model = column.related_model
                if nullable:
                    found.append(f"{name}.{field_name}")
    return found


def test_read_only_relations_over_nullable_columns_are_nullable():
    """An unconfirmed edge's `relation_confirmed_by`, an active hold's `lifted_by`, a rule on a
    category's `licence`, an unrevoked waiver's `revoked_by`, an unconsumed upload's
    `consumed_by`: null in answers, so nullable in the schema."""
    assert nullable_relations_not_marked() == []
    components = raw()["components"]["schemas"]
    assert components["LicenceRule"]["properties"]["licence"]["nullable"] is True
    assert components["Edge"]["properties"]["relation_confirmed_by"]["nullable"] is True


def test_answers_with_nulls_keep_the_contract(exchange, catalogue, engineer, compliance_user):
    policy = exchange(engineer, "GET", "/api/v1/licence-policy/", "/api/v1/licence-policy/")
    assert any(rule["licence"] is None for rule in policy.json["rules"])
    derived = catalogue["versions"][1]
    parents = exchange(
        engineer, "GET", "/api/v1/versions/{id}/parents/", f"/api/v1/versions/{derived}/parents/"
    )
    assert parents.json[0]["relation_confirmed_by"] is None
    hold = catalogue["holds"][0]
    held = exchange(compliance_user, "GET", "/api/v1/holds/{id}/", f"/api/v1/holds/{hold}/")
    assert held.json["lifted_by"] is None


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("spdx-2.3", "application/spdx+json"),
        ("spdx-3.0", "application/ld+json"),
        ("model-card", "text/markdown"),
    ],
)
def test_exports_answer_in_the_media_type_the_schema_names(
    exchange, catalogue, engineer, name, media_type
):
    template = f"/api/v1/versions/{{id}}/export/{name}/"
    assert list(raw()["paths"][template]["get"]["responses"]["200"]["content"]) == [media_type]
    derived = catalogue["versions"][1]
    answer = exchange(engineer, "GET", template, template.replace("{id}", str(derived)))
    assert answer.status_code == 200
    assert answer.mimetype == media_type


def component_of(template: str, method: str = "get", status: str = "200") -> str:
    response = raw()["paths"][template][method]["responses"][status]
    return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]


def test_the_gate_answer_is_typed(exchange, catalogue, engineer):
    template = "/api/v1/versions/{id}/gate/"
    assert component_of(template) == "GateAnswer"
    properties = raw()["components"]["schemas"]["GateAnswer"]["properties"]
    assert properties["checks"]["items"]["$ref"].endswith("/GateCheck")
    derived = catalogue["versions"][1]
    answer = exchange(engineer, "GET", template, f"/api/v1/versions/{derived}/gate/?stage=staging")
    assert answer.status_code == 200
    assert {row["check"] for row in answer.json["checks"]} >= {"transition", "metadata"}


def test_lineage_answers_with_placeholders_are_typed(exchange, catalogue, engineer):
    """The engineer reads the base's lineage: another team's descendant is a placeholder (no
    id, name or digest) and its hold says neither why nor who; both validate as documented."""
    assert component_of("/api/v1/versions/{id}/lineage/") == "LineageGraph"
    assert component_of("/api/v1/versions/{id}/path/") == "LineagePath"
    assert component_of("/api/v1/versions/{id}/holds/") == "VersionHolds"
    base, derived, hidden, _ = catalogue["versions"]
    graph = exchange(
        engineer,
        "GET",
        "/api/v1/versions/{id}/lineage/",
        f"/api/v1/versions/{base}/lineage/",
    ).json
    placeholders = [node for node in graph["nodes"] if node["hidden"]]
    assert placeholders == [
        {
            "id": "hidden-1",
            "kind": "version",
            "generation": 1,
            "held": True,
            "holds": [],
            "focus": False,
            "hidden": True,
            "version_id": None,
            "ref": None,
        }
    ]
    assert graph["hidden"]["summary"] == "1 version you cannot see"
    assert {edge["kind"] for edge in graph["edges"]} == {"derivation", "training_data"}
    assert [hold["reason"] for hold in graph["holds"]] == [None]
    path = exchange(
        engineer,
        "GET",
        "/api/v1/versions/{id}/path/",
        f"/api/v1/versions/{base}/path/?to={derived}",
    ).json
    assert path["length"] == 1
    holds = exchange(
        engineer,
        "GET",
        "/api/v1/versions/{id}/holds/",
        f"/api/v1/versions/{base}/holds/",
    ).json
    assert holds == {"version": "upstream/base@main", "held": False, "holds": []}
    assert hidden not in {node.get("version_id") for node in graph["nodes"]}


def test_registration_answers_are_typed(exchange, catalogue, engineer):
    template = "/api/v1/registrations/"
    assert component_of(template, "post", "201") == "Registered"
    assert component_of(template, "post", "200") == "RegistrationPlan"
    body = {
        "model": "acme/classifier",
        "version": "v2",
        "artefact_digest": digest("v2"),
        "licence_declared": "Apache-2.0",
        "parents": [{"version": "upstream/base@main", "relation": "finetune"}],
    }
    plan = exchange(engineer, "POST", template, f"{template}?dry_run=1", json=body)
    assert plan.status_code == 200
    assert plan.json["valid"] is True
    created = exchange(engineer, "POST", template, template, json=body)
    assert created.status_code == 201
    assert created.json["training_run"] is None


def test_an_earlier_policy_revision_keeps_the_contract(exchange, catalogue, compliance_user):
    """`?revision=N` answers the rules as stored at N; they carry the same fields as the
    current ones (`updated_at`: when that revision was made). A revision that never was: 404."""
    from licensing.models import LicenceRule
    from licensing.services import licence_rule_update

    rule = LicenceRule.objects.filter(policy__active=True).first()
    licence_rule_update(actor=compliance_user, rule=rule, changes={"message": "Reworded."})
    template = "/api/v1/licence-policy/"
    earlier = exchange(compliance_user, "GET", template, f"{template}?revision=1").json
    assert earlier["revision"] == 1
    assert all(row["updated_at"] == earlier["updated_at"] for row in earlier["rules"])
    assert exchange(compliance_user, "GET", template, f"{template}?revision=99").status_code == 404


def test_an_archived_version_answers_its_compliance_in_the_same_shape(
    exchange, catalogue, engineer
):
    """No gate judges an archived version: every field of the answer, `state` null."""
    retired = catalogue["versions"][3]
    template = "/api/v1/versions/{id}/compliance/"
    answer = exchange(engineer, "GET", template, f"/api/v1/versions/{retired}/compliance/").json
    assert answer["stage"] == "archived"
    assert answer["state"] is None and answer["computed_at"] is None
    assert answer["failing"] == [] and answer["current_passed"] is None
