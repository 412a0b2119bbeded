"""No input reaches a 500: every path and query parameter of every GET operation in the OpenAPI
schema, given values that break naive integer parsing, answers a 4xx (or 200) in the one JSON
error envelope; so do Django-level errors under /api/."""

import json
import re

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

HOSTILE = [
    "12345678901234567890123",  # 23 digits: past every integer column
    "²",  # a digit to str.isdigit(), not to int()
    "١٢",  # Arabic-Indic digits, which int() accepts
    "-1",
    "1e30",
    "0x10",
    "1.5",
    " 7",
    "9223372036854775808",  # 2**63
]


def get_operations() -> list[tuple[str, list[dict]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, operation.get("parameters", []))
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method == "get"
    ]


def fill(path: str, value: str = "1") -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def assert_enveloped(response, url: str) -> None:
    assert response.status_code < 500, (url, response.status_code, response.content[:300])
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert set(body) == {"error"}, (url, body)
        assert body["error"]["status"] == response.status_code


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_path_and_query_parameters_never_reach_a_500(
    api_for, engineer, make_version, value
):
    make_version()
    api = api_for(engineer)
    operations = get_operations()
    assert len(operations) > 20
    for path, parameters in operations:
        if "{" in path:
            url = fill(path, value)
            assert_enveloped(api.get(url), url)
        for parameter in parameters:
            if parameter["in"] != "query":
                continue
            url = fill(path)
            response = api.get(url, {parameter["name"]: value})
            assert_enveloped(response, f"{url}?{parameter['name']}={value}")


def test_deeply_nested_json_is_a_400_in_the_envelope(api_for, engineer):
    body = "[" * 100_000 + "]" * 100_000
    response = api_for(engineer).post("/api/v1/models/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_an_oversized_body_is_a_413_in_the_envelope(api_for, engineer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api_for(engineer).post(
        "/api/v1/models/",
        data=json.dumps({"name": "acme/x", "description": "x" * 4096}),
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.json()["error"]["status"] == 413


def test_unknown_api_url_and_wrong_method_are_enveloped(api_for, engineer):
    api = api_for(engineer)
    missing = api.get("/api/v1/no-such-thing/")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == 404
    wrong = api.delete("/api/v1/me/")
    assert wrong.status_code == 405 and wrong.json()["error"]["status"] == 405


def test_a_server_error_under_the_api_is_enveloped(api_for, engineer, monkeypatch, client):
    from registry.api import views

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(views.TeamViewSet, "list", boom)
    api = api_for(engineer)
    api.raise_request_exception = False
    response = api.get("/api/v1/teams/")
    assert response.status_code == 500
    body = response.json()
    assert (
        body["error"]["status"] == 500 and "secret internal detail" not in response.content.decode()
    )


def test_limit_has_a_ceiling(api_for, engineer, make_model, settings):
    settings.PEDIGREE_MAX_PAGE_SIZE = 2
    for _ in range(3):
        make_model()
    body = api_for(engineer).get("/api/v1/models/", {"limit": 10**9}).json()
    assert body["count"] == 3 and len(body["results"]) == 2


def test_the_schema_says_the_truth_about_findings_and_updated_by():
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    assert components["EvaluationRun"]["properties"]["findings"]["type"] == "array"
    nullable = [
        name
        for name, schema in components.items()
        if "updated_by" in schema.get("properties", {})
        and not schema["properties"]["updated_by"].get("nullable")
    ]
    assert nullable == []


def test_requests_are_throttled_per_token_in_the_envelope(api_for, engineer, make_user, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import UserRateThrottle

    rates = {"anon": "3/minute", "user": "3/minute"}
    UserRateThrottle.THROTTLE_RATES = rates
    try:
        api = api_for(engineer)
        statuses = [api.get("/api/v1/teams/").status_code for _ in range(4)]
        # Another X-Forwarded-For does not make another client without a trusted proxy.
        again = api.get("/api/v1/teams/", HTTP_X_FORWARDED_FOR="203.0.113.9")
        other = api_for(make_user()).get("/api/v1/teams/")
    finally:
        UserRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    assert statuses == [200, 200, 200, 429]
    assert again.status_code == 429
    assert again.json()["error"]["status"] == 429 and int(again["Retry-After"]) > 0
    assert other.status_code == 200  # another token has its own budget


def test_a_throttle_history_left_by_drf_before_an_upgrade_is_not_read(api_for, engineer):
    """DRF's throttle kept a list of request times under `throttle_user_<id>`; the window
    counter keeps its own key, so a cache filled before an upgrade answers 200, not 500."""
    from django.core.cache import cache

    cache.set(f"throttle_user_{engineer.pk}", [1.0, 2.0, 3.0], 60)
    assert api_for(engineer).get("/api/v1/teams/").status_code == 200


def without_groups(route: str) -> str:
    """A regex route with each named group `(?P<name>…)` (nested parentheses included) as `{}`."""
    while (start := route.find("(?P<")) >= 0:
        depth, end = 0, start
        for end in range(start, len(route)):
            depth += {"(": 1, ")": -1}.get(route[end], 0)
            if depth == 0:
                break
        route = route[:start] + "{}" + route[end + 1 :]
    return route


def api_routes() -> set[str]:
    """Every route of the URL conf under /api/v1/, its parameters as `{}`."""
    from django.urls import get_resolver

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                yield from walk(pattern.url_patterns, route)
            else:
                yield route

    found = set()
    for route in walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        if "format>" in route or route in ("api/v1/", "api/v1/^$"):
            continue  # DRF's format-suffix duplicates and its browsable index
        route = re.sub(r"<[^>]+>", "{}", without_groups(route)).replace("^", "").replace("$", "")
        found.add("/" + route)
    return found


def test_every_operation_refuses_anonymous_callers_and_every_route_is_covered(api_for):
    """Deny by default: each operation of the schema answers 401 in the envelope without a
    token; and every API route of the URL conf is in the schema, so a new route cannot escape
    this test (or the hostile-parameter one above)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {re.sub(r"\{[^}]+\}", "{}", path) for path in schema["paths"]}
    routes = api_routes()
    assert len(routes) > 30 and "/api/v1/versions/{}/lineage/" in routes
    assert routes - documented == set()
    api = api_for(None)
    for path, item in schema["paths"].items():
        for method in item:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            response = getattr(api, method)(fill(path), {}, format="json")
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json()["error"]["status"] == 401
