"""The catalogue API: permissions per role, validation, errors, filtering and query counts."""

import pytest

from registry.models import AuditEntry, Dataset, ModelVersion, RegisteredModel
from tests.conftest import digest

pytestmark = pytest.mark.django_db

LIST_ENDPOINTS = ["teams", "models", "versions", "datasets", "dataset-versions"]


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code
    assert body["error"]["message"]
    return body["error"]


@pytest.fixture
def catalogue(make_version, make_dataset_version, make_model, outsider, other_team):
    """One version and dataset version owned by acme, and one of each owned by globex."""
    ours = make_version(make_model("acme/support-intent"), version="v1")
    theirs = make_version(
        make_model("globex/secret", actor=outsider, owner=other_team), actor=outsider
    )
    our_data = make_dataset_version("acme/tickets")
    their_data = make_dataset_version("globex/private", actor=outsider, owner=other_team)
    return {"ours": ours, "theirs": theirs, "our_data": our_data, "their_data": their_data}


@pytest.mark.parametrize("endpoint", [*LIST_ENDPOINTS, "me"])
def test_anonymous_is_refused_with_401(api_for, endpoint, catalogue):
    response = api_for(None).get(f"/api/v1/{endpoint}/")
    assert response.status_code == 401
    assert "Token" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("endpoint", "payload"),
    [
        ("models", {"name": "acme/x", "kind": "derived", "team": "acme"}),
        ("datasets", {"name": "acme/d", "team": "acme"}),
        ("teams", {"slug": "t", "name": "T"}),
    ],
)
def test_anonymous_cannot_create(api_for, endpoint, payload, team):
    assert api_for(None).post(f"/api/v1/{endpoint}/", payload, format="json").status_code == 401


def test_bad_token_is_401(api_for, catalogue):
    api = api_for(None)
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert api.get("/api/v1/models/").status_code == 401


def test_engineer_sees_only_own_team_objects(api_for, engineer, catalogue):
    api = api_for(engineer)
    names = [m["name"] for m in api.get("/api/v1/models/").json()["results"]]
    assert names == ["acme/support-intent"]
    refs = [v["ref"] for v in api.get("/api/v1/versions/").json()["results"]]
    assert refs == ["acme/support-intent@v1"]
    datasets = [d["name"] for d in api.get("/api/v1/datasets/").json()["results"]]
    assert datasets == ["acme/tickets"]
    assert [t["slug"] for t in api.get("/api/v1/teams/").json()["results"]] == ["acme"]


@pytest.mark.parametrize("key", ["theirs", "their_data"])
def test_other_teams_objects_are_404(api_for, engineer, catalogue, key):
    obj = catalogue[key]
    endpoint = "versions" if key == "theirs" else "dataset-versions"
    response = api_for(engineer).get(f"/api/v1/{endpoint}/{obj.pk}/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    patch = api_for(engineer).patch(
        f"/api/v1/{endpoint}/{obj.pk}/", {"known_biases": "x"}, format="json"
    )
    assert patch.status_code == 404


def test_internal_models_are_readable_but_not_writable_by_other_teams(
    api_for, outsider, make_model
):
    shared = make_model("acme/shared-base", visibility="internal", kind="upstream")
    api = api_for(outsider)
    assert api.get(f"/api/v1/models/{shared.pk}/").status_code == 200
    response = api.patch(f"/api/v1/models/{shared.pk}/", {"task": "x"}, format="json")
    assert response.status_code == 403
    assert "not a member of team 'acme'" in error_of(response)["message"]
    shared.refresh_from_db()
    assert shared.task == ""


def test_compliance_reads_everything(api_for, compliance_user, catalogue):
    api = api_for(compliance_user)
    assert api.get("/api/v1/models/").json()["count"] == 2
    assert api.get("/api/v1/versions/").json()["count"] == 2
    assert api.get("/api/v1/dataset-versions/").json()["count"] == 2
    assert api.get(f"/api/v1/versions/{catalogue['theirs'].pk}/").status_code == 200


def test_engineer_creates_model_and_version_in_own_team(api_for, engineer, team):
    api = api_for(engineer)
    response = api.post(
        "/api/v1/models/",
        {
            "name": "acme/support-intent",
            "kind": "derived",
            "team": "acme",
            "task": "text-classification",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["created_by"] == "alice"
    response = api.post(
        "/api/v1/versions/",
        {
            "model": "acme/support-intent",
            "version": "v1",
            "artefact_digest": digest("w"),
            "licence_declared": "Apache-2.0",
            "risk_tier": "high",
            "intended_use": "Routing support tickets",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["ref"] == "acme/support-intent@v1"
    assert body["stage"] == "development"
    assert body["registered_by"] == "alice"
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions[-2:] == ["model.create", "version.create"]


def test_engineer_cannot_create_in_another_team(api_for, engineer, other_team, compliance_user):
    # The team exists but is not visible to alice: named as an unknown choice, nothing written.
    response = api_for(engineer).post(
        "/api/v1/models/", {"name": "globex/x", "kind": "derived", "team": "globex"}, format="json"
    )
    assert response.status_code == 400
    assert "team" in error_of(response)["fields"]
    assert not RegisteredModel.objects.exists()


def test_compliance_without_team_cannot_register_models(api_for, compliance_user, team):
    response = api_for(compliance_user).post(
        "/api/v1/models/", {"name": "acme/x", "kind": "derived", "team": "acme"}, format="json"
    )
    assert response.status_code == 403
    assert not RegisteredModel.objects.exists()


def test_only_compliance_sets_concluded_licence(api_for, engineer, compliance_user, catalogue):
    version = catalogue["ours"]
    url = f"/api/v1/versions/{version.pk}/"
    refused = api_for(engineer).patch(url, {"licence_concluded": "Apache-2.0"}, format="json")
    assert refused.status_code == 403
    assert error_of(refused)["fields"] == {
        "licence_concluded": ["Only compliance staff can set the concluded licence."]
    }
    accepted = api_for(compliance_user).patch(
        url, {"licence_concluded": "Apache-2.0"}, format="json"
    )
    assert accepted.status_code == 200
    assert accepted.json()["licence_concluded"] == "Apache-2.0"
    entry = AuditEntry.objects.filter(action="version.update").get()
    assert entry.actor == compliance_user
    assert entry.before["licence_concluded"] == ""
    assert entry.after["licence_concluded"] == "Apache-2.0"


def test_engineer_updates_risk_metadata(api_for, engineer, catalogue):
    url = f"/api/v1/versions/{catalogue['ours'].pk}/"
    response = api_for(engineer).patch(
        url, {"risk_tier": "high", "known_limitations": "English only"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["risk_tier"] == "high"


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"risk_tier": "extreme"}, "risk_tier", "not a valid choice"),
        ({"stage": "production"}, "stage", "read-only"),
        ({"artefact_digest": digest(9)}, "artefact_digest", "read-only"),
        ({"colour": "blue"}, "colour", "Unknown"),
        ({"domain": "x" * 200}, "domain", "no more than 128"),
    ],
)
def test_bad_version_updates_are_400_and_change_nothing(
    api_for, engineer, catalogue, payload, field, fragment
):
    version = catalogue["ours"]
    before = ModelVersion.objects.filter(pk=version.pk).values().get()
    response = api_for(engineer).patch(f"/api/v1/versions/{version.pk}/", payload, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert fragment in " ".join(error["fields"][field])
    assert field in error["message"]
    assert ModelVersion.objects.filter(pk=version.pk).values().get() == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "derived", "team": "acme"}, "name"),
        ({"name": "acme/x", "kind": "sideways", "team": "acme"}, "kind"),
        ({"name": "acme/x y", "kind": "derived", "team": "acme"}, "name"),
        ({"name": "a" * 300, "kind": "derived", "team": "acme"}, "name"),
        (
            {"name": "acme/x", "kind": "derived", "team": "acme", "visibility": "public"},
            "visibility",
        ),
    ],
)
def test_bad_model_creation_is_400(api_for, engineer, payload, field):
    response = api_for(engineer).post("/api/v1/models/", payload, format="json")
    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert not RegisteredModel.objects.exists()


def test_duplicate_names_and_versions_are_409(api_for, engineer, catalogue):
    api = api_for(engineer)
    response = api.post(
        "/api/v1/models/",
        {"name": "acme/support-intent", "kind": "derived", "team": "acme"},
        format="json",
    )
    assert response.status_code == 409
    assert "already exists" in error_of(response)["fields"]["name"][0]
    response = api.post(
        "/api/v1/versions/",
        {"model": "acme/support-intent", "version": "v1", "artefact_digest": digest(1)},
        format="json",
    )
    assert response.status_code == 409
    assert "pick a new label" in error_of(response)["message"]
    response = api.post(
        "/api/v1/datasets/", {"name": "acme/tickets", "team": "acme"}, format="json"
    )
    assert response.status_code == 409
    assert Dataset.objects.count() == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"artefact_digest": "abc"}, "artefact_digest"),
        ({"artefact_digest": "A" * 64}, "artefact_digest"),
        ({"hub_revision": "main", "hub_repo_id": "x/y"}, "hub_revision"),
        ({"version": ""}, "version"),
        ({"version": "has space"}, "version"),
        ({"parameter_count": -1}, "parameter_count"),
    ],
)
def test_bad_version_creation_is_400(api_for, engineer, make_model, payload, field):
    make_model("acme/m")
    data = {"model": "acme/m", "version": "v1", "artefact_digest": digest(1), **payload}
    response = api_for(engineer).post("/api/v1/versions/", data, format="json")
    assert response.status_code == 400, response.json()
    assert field in error_of(response)["fields"]
    assert not ModelVersion.objects.exists()


def test_malformed_json_is_400(api_for, engineer):
    response = api_for(engineer).post(
        "/api/v1/models/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "valid JSON" in error_of(response)["message"]


def test_dataset_version_roundtrip(api_for, engineer, team):
    api = api_for(engineer)
    assert (
        api.post(
            "/api/v1/datasets/",
            {"name": "acme/tickets", "team": "acme", "source": "generated"},
            format="json",
        ).status_code
        == 201
    )
    response = api.post(
        "/api/v1/dataset-versions/",
        {
            "dataset": "acme/tickets",
            "version": "2026-11",
            "sha256": digest("tickets"),
            "size_bytes": 2048,
            "row_count": 800,
            "licence_declared": "CC-BY-4.0",
            "contains_personal_data": False,
            "sensitive_attributes": ["region", "age_band"],
            "known_biases": "South under-represented",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["sensitive_attributes"] == ["region", "age_band"]
    bad = api.post(
        "/api/v1/dataset-versions/",
        {"dataset": "acme/tickets", "version": "2", "sha256": digest(2), "size_bytes": -5},
        format="json",
    )
    assert bad.status_code == 400
    assert "size_bytes" in error_of(bad)["fields"]


def test_filters_and_ordering(api_for, engineer, make_model, make_version):
    base = make_model("acme/base", kind="upstream")
    tuned = make_model("acme/tuned")
    make_version(base, version="v1", risk_tier="minimal", licence_declared="MIT")
    make_version(tuned, version="v1", risk_tier="high", licence_declared="Apache-2.0")
    make_version(tuned, version="v2", risk_tier="high", licence_declared="CC-BY-NC-4.0")
    api = api_for(engineer)

    def refs(**params):
        return [v["ref"] for v in api.get("/api/v1/versions/", params).json()["results"]]

    assert refs(model="acme/tuned", ordering="version") == ["acme/tuned@v1", "acme/tuned@v2"]
    assert refs(kind="upstream") == ["acme/base@v1"]
    assert refs(risk_tier="high", ordering="-version") == ["acme/tuned@v2", "acme/tuned@v1"]
    assert refs(licence="cc-by-nc") == ["acme/tuned@v2"]
    assert refs(stage="production") == []
    assert refs(team="acme", ordering="version", model="acme/base") == ["acme/base@v1"]
    models = api.get("/api/v1/models/", {"kind": "derived"}).json()["results"]
    assert [m["name"] for m in models] == ["acme/tuned"]
    bad = api.get("/api/v1/versions/", {"stage": "heaven"})
    assert bad.status_code == 400
    assert "stage" in error_of(bad)["fields"]


def test_pagination(api_for, engineer, make_model):
    for index in range(5):
        make_model(f"acme/m{index}")
    page = api_for(engineer).get("/api/v1/models/", {"limit": 2, "offset": 2}).json()
    assert page["count"] == 5
    assert [m["name"] for m in page["results"]] == ["acme/m2", "acme/m3"]
    assert page["next"] and page["previous"]


@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS)
@pytest.mark.parametrize("role", ["engineer", "compliance_user"])
def test_list_query_count_is_constant(
    api_for,
    request,
    role,
    endpoint,
    make_version,
    make_model,
    make_dataset_version,
    django_assert_max_num_queries,
    team,
):
    user = request.getfixturevalue(role)
    api = api_for(user)

    def grow(n):
        for _ in range(n):
            make_version(make_model())
            make_dataset_version()

    grow(2)
    api.get(f"/api/v1/{endpoint}/")  # warm caches (content types etc.)
    with django_assert_max_num_queries(8) as small:
        assert api.get(f"/api/v1/{endpoint}/").status_code == 200
    grow(25)
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        response = api.get(f"/api/v1/{endpoint}/")
    assert response.status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)


def test_me(api_for, engineer, compliance_user):
    assert api_for(engineer).get("/api/v1/me/").json() == {
        "username": "alice",
        "teams": ["acme"],
        "compliance": False,
    }
    assert api_for(compliance_user).get("/api/v1/me/").json()["compliance"] is True


def test_openapi_schema_and_docs_are_served_locally(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/versions/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html


def test_team_creation_is_for_compliance(api_for, engineer, compliance_user):
    assert (
        api_for(engineer)
        .post("/api/v1/teams/", {"slug": "new", "name": "New"}, format="json")
        .status_code
        == 403
    )
    response = api_for(compliance_user).post(
        "/api/v1/teams/", {"slug": "new", "name": "New"}, format="json"
    )
    assert response.status_code == 201


SERVER_OWNED = [
    {"hub_repo_id": "sentence-transformers/all-MiniLM-L6-v2", "hub_revision": "a" * 40},
    {"artefact_uri": "file:///srv/artefacts/teams/globex/secret"},
    {"artefact_size": 10},
    {"parameter_count": 10},
]


@pytest.mark.parametrize("stated", SERVER_OWNED)
def test_server_owned_fields_are_refused_on_creation(api_for, engineer, make_model, stated):
    """A private version claiming a Hub revision would block every other team's import of it."""
    make_model("acme/m")
    data = {"model": "acme/m", "version": "v1", "artefact_digest": digest(1), **stated}
    response = api_for(engineer).post("/api/v1/versions/", data, format="json")
    assert response.status_code == 400, response.json()
    error = error_of(response)
    assert set(stated) <= set(error["fields"])
    assert "set by the server" in error["fields"][next(iter(stated))][0]
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize("stated", [*SERVER_OWNED, {"artefact_digest": digest(2)}])
def test_server_owned_fields_are_refused_on_update(api_for, engineer, make_version, stated):
    version = make_version()
    before = ModelVersion.objects.values().get(pk=version.pk)
    response = api_for(engineer).patch(f"/api/v1/versions/{version.pk}/", stated, format="json")
    assert response.status_code == 400, response.json()
    assert set(stated) <= set(error_of(response)["fields"])
    assert ModelVersion.objects.values().get(pk=version.pk) == before


def test_registrations_refuse_server_owned_fields(api_for, engineer, make_model):
    make_model("acme/m")
    response = api_for(engineer).post(
        "/api/v1/registrations/",
        {
            "model": "acme/m",
            "version": "v1",
            "artefact_digest": digest(1),
            "artefact_uri": "s3://bucket/x",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "artefact_uri" in error_of(response)["fields"]
    assert not ModelVersion.objects.exists()
