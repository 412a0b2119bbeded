"""A NUL character (U+0000) is valid JSON and a valid URL escape, but PostgreSQL stores it in
neither text nor jsonb: in a body it is refused as a 400 before anything reaches the database,
and in a query string it is a 400 or an empty answer, on every database (schemathesis found a
model name with a NUL to be a 500 on PostgreSQL)."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_nul_in_a_json_body_is_a_400_that_names_it(exchange, catalogue, engineer):
    derived = catalogue["versions"][1]
    for template, url, body in [
        ("/api/v1/versions/", "/api/v1/versions/", {"model": "acme/\x00", "version": "v9"}),
        (
            "/api/v1/versions/{id}/",
            f"/api/v1/versions/{derived}/",
            {"description": "fine", "domain": {"\x00": 1}},
        ),
        (
            "/api/v1/registrations/",
            "/api/v1/registrations/",
            {"model": "acme/x", "version": "v1", "training_run": {"notes": ["a\x00"]}},
        ),
    ]:
        method = "PATCH" if "{id}" in template else "POST"
        answer = exchange(engineer, method, template, url, json=body)
        assert answer.status_code == 400, (url, answer.json)
        assert "NUL character" in answer.json["error"]["message"]


@pytest.mark.parametrize(
    "query",
    ["search=%00", "model=%00", "licence=a%00b", "ordering=%00", "team=%00", "stage=%00"],
)
def test_a_nul_in_a_query_string_is_never_a_server_error(exchange, catalogue, engineer, query):
    answer = exchange(engineer, "GET", "/api/v1/versions/", f"/api/v1/versions/?{query}")
    assert answer.status_code in (200, 400)
