"""Transient faults answer a retryable 503 in the JSON envelope, never a 500 and never a lie."""

from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection

from registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


@contextmanager
def failing_queries(marker: str, message: str):
    """Every SQL statement containing `marker` fails as when the database drops the connection."""

    def wrapper(execute, sql, params, many, context):
        if marker in sql:
            raise OperationalError(message)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


def assert_unavailable(response):
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (503, "unavailable")
    assert "Retry" in error["message"]


def test_a_lost_database_answers_503_with_retry_after(api_for, engineer, team):
    api = api_for(engineer)
    with failing_queries("SELECT", "server closed the connection unexpectedly"):
        response = api.get("/api/v1/models/")
    assert_unavailable(response)


def test_a_database_error_in_constraint_validation_is_not_reported_as_a_conflict(
    api_for, engineer, team, seeded
):
    """Django's constraint validation swallows a database error and reports the conditional
    "one version in production" constraint as violated; the registration must answer 503."""
    body = {
        "model": "acme/flaky",
        "version": "v1",
        "artefact_digest": "a" * 64,
        "licence_declared": "Apache-2.0",
        "create_model": {"team": team.slug},
    }
    # Q.check(), which validates conditional constraints, names its probe column "_check".
    with failing_queries('"_check"', "canceling statement due to lock timeout"):
        response = api_for(engineer).post("/api/v1/registrations/", body, format="json")

    assert_unavailable(response)
    assert not RegisteredModel.objects.filter(name="acme/flaky").exists()
    assert not ModelVersion.objects.filter(version="v1", model__name="acme/flaky").exists()
    # The same registration goes through once the database answers again.
    response = api_for(engineer).post("/api/v1/registrations/", body, format="json")
    assert response.status_code == 201, response.content
