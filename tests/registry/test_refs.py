"""Versions named by MODEL@VERSION in every version route, plain or URL-encoded; 404 and 405
under /api/ in the JSON envelope."""

import pytest
import requests
from rest_framework.authtoken.models import Token

from registry.models import StagePolicy

pytestmark = pytest.mark.django_db

REF = "acme/support-intent@1.0.2"
# How clients send it: urllib.parse.quote(REF, safe="@"), or everything quoted.
FORMS = [REF, "acme%2Fsupport-intent@1.0.2", "acme%2Fsupport-intent%401.0.2"]


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code
    assert body["error"]["message"]
    return body["error"]


@pytest.fixture
def version(make_version, make_model):
    StagePolicy.objects.update_or_create(
        stage="staging",
        risk_tier="limited",
        defaults={"required_checks": ["metadata"], "approvals_required": 0},
    )
    return make_version(
        make_model("acme/support-intent"),
        version="1.0.2",
        risk_tier="limited",
        intended_use="Routing support tickets",
        known_limitations="English only",
    )


@pytest.fixture
def secret(make_version, make_model, outsider, other_team):
    model = make_model("globex/secret", actor=outsider, owner=other_team)
    return make_version(model, version="v1", actor=outsider)


@pytest.mark.parametrize("form", ["id", *FORMS])
@pytest.mark.parametrize(
    "route", ["", "gate/?stage=staging", "decisions/", "approvals/", "waivers/"]
)
def test_reads_take_an_id_or_a_ref_plain_or_encoded(api_for, engineer, version, form, route):
    ref = version.pk if form == "id" else form
    response = api_for(engineer).get(f"/api/v1/versions/{ref}/{route}")
    assert response.status_code == 200, response.json()
    if route == "":
        assert response.json()["id"] == version.pk
    if route.startswith("gate"):
        assert response.json()["version"] == REF


def test_writes_take_a_ref(api_for, engineer, compliance_user, version):
    api = api_for(engineer)
    patched = api.patch(
        f"/api/v1/versions/{FORMS[1]}/", {"known_limitations": "English, Welsh"}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["known_limitations"] == "English, Welsh"
    promoted = api.post(
        f"/api/v1/versions/{FORMS[2]}/promote/",
        {"stage": "staging", "justification": "pilot"},
        format="json",
    )
    assert promoted.status_code == 200, promoted.json()
    version.refresh_from_db()
    assert version.stage == "staging"
    approval = api_for(compliance_user).post(
        f"/api/v1/versions/{REF}/approvals/", {"stage": "production"}, format="json"
    )
    assert approval.status_code == 201, approval.json()
    assert approval.json()["artefact_digest"] == version.artefact_digest


@pytest.mark.parametrize("route", ["", "gate/?stage=staging", "decisions/", "approvals/"])
def test_an_invisible_ref_is_404_exactly_like_an_invisible_id(api_for, engineer, secret, route):
    api = api_for(engineer)
    answers = [
        api.get(f"/api/v1/versions/{ref}/{route}")
        for ref in (secret.pk, "globex/secret@v1", "globex%2Fsecret%40v1", "acme/none@v9")
    ]
    assert {response.status_code for response in answers} == {404}
    bodies = [error_of(response) for response in answers]
    assert all(body == bodies[0] for body in bodies)
    assert "secret" not in str(bodies[0])


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/versions/not-a-ref/",
        "/api/v1/versions/acme@/gate/",
        "/api/v1/versions/@v1/",
        "/api/v1/versions/acme/a/b@v1/",
        "/api/v1/versions/acme%2Fsupport-intent%40/lineage/",
        "/api/v1/nothing-here/",
        "/api/unknown",
    ],
)
def test_malformed_refs_and_unknown_api_urls_are_json_404(api_for, engineer, version, path):
    response = api_for(engineer).get(path)
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert "MODEL@VERSION" in error["message"]


def test_a_404_stays_json_with_debug_on_and_html_outside_the_api(
    api_for, engineer, client, settings
):
    settings.DEBUG = True
    assert error_of(api_for(engineer).get("/api/v1/nothing-here/"))["code"] == "not_found"
    settings.DEBUG = False
    page = client.get("/nothing-here/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_a_missing_slash_is_still_redirected(api_for, engineer, version):
    response = api_for(engineer).get("/api/v1/versions")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/versions/"


@pytest.mark.parametrize("method", ["delete", "put"])
def test_an_unsupported_method_is_json_405(api_for, engineer, version, method):
    response = getattr(api_for(engineer), method)(f"/api/v1/versions/{REF}/", {}, format="json")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.django_db(transaction=True)
def test_a_real_server_routes_both_forms(live_server, engineer, version):
    """Through WSGI as clients send it: the server decodes %2F and %40 before routing."""
    headers = {"Authorization": f"Token {Token.objects.create(user=engineer).key}"}
    for form in FORMS:
        response = requests.get(
            f"{live_server.url}/api/v1/versions/{form}/gate/",
            params={"stage": "staging"},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["version"] == REF
    missing = requests.get(
        f"{live_server.url}/api/v1/versions/acme%2Fnope/", headers=headers, timeout=30
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
