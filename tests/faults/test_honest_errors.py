"""Transient faults answer a retryable 503 in the JSON envelope, never a 500 and never a lie."""

from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection

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
    api_for, engineer, make_version
):
    """Django's constraint validation swallows a database error and reports the conditional
    "one version in production" constraint as violated; the change must answer 503. (A
    registration no longer asks: its INSERT answers the constraints.)"""
    version = make_version()
    url = f"/api/v1/versions/{version.pk}/"
    # Q.check(), which validates conditional constraints, names its probe column "_check".
    with failing_queries('"_check"', "canceling statement due to lock timeout"):
        response = api_for(engineer).patch(url, {"description": "flaky"}, format="json")

    assert_unavailable(response)
    version.refresh_from_db()
    assert version.description == ""
    # The same change goes through once the database answers again.
    response = api_for(engineer).patch(url, {"description": "flaky"}, format="json")
    assert response.status_code == 200, response.content
