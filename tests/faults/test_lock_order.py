"""A deadlock or serialization failure is retried inside the service; past the last attempt it
answers 503 and nothing of the change is written."""

from contextlib import contextmanager

import psycopg.errors
import pytest
from django.db import OperationalError, connection

from lineage.models import HeldThrough, Hold
from registry.models import AuditEntry, EventDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def deadlocks(table: str, times: int):
    """The first `times` INSERTs into `table` are aborted as PostgreSQL aborts a deadlock's
    victim (SQLSTATE 40P01), whatever the database under the test."""
    left = [times]

    def wrapper(execute, sql, params, many, context):
        if sql.replace('"', "").startswith(f"INSERT INTO {table} ") and left[0] > 0:
            left[0] -= 1
            raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected(
                "deadlock detected"
            )
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield left


@pytest.fixture
def family(make_version, make_model):
    from lineage.services import ParentSpec, edges_create

    base = make_version(make_model("acme/base", kind="upstream"))
    child = make_version(make_model("acme/child"))
    edges_create(actor=child.registered_by, child=child, parents=[ParentSpec(base, "finetune")])
    return base, child


@pytest.fixture
def webhook():
    return WebhookEndpoint.objects.create(name="ops", url="http://127.0.0.1:9/hook", secret="s")


def test_a_hold_that_hits_a_deadlock_is_retried_and_placed_once(
    api_for, compliance_user, family, webhook
):
    base, child = family
    with deadlocks(HeldThrough._meta.db_table, times=2) as left:
        response = api_for(compliance_user).post(
            "/api/v1/holds/", {"version": base.pk, "reason": "licence withdrawn"}, format="json"
        )
    assert left == [0]
    assert response.status_code == 201, response.content
    hold = Hold.objects.get()
    assert set(HeldThrough.objects.values_list("version_id", flat=True)) == {base.pk, child.pk}
    assert AuditEntry.objects.filter(action="hold.place").count() == 1
    assert EventDelivery.objects.filter(event="version.held").count() == 1
    assert hold.pk == response.json()["id"]


def test_a_hold_that_keeps_deadlocking_answers_503_and_writes_nothing(
    api_for, compliance_user, family, webhook
):
    base, _ = family
    with deadlocks(HeldThrough._meta.db_table, times=100):
        response = api_for(compliance_user).post(
            "/api/v1/holds/", {"version": base.pk, "reason": "licence withdrawn"}, format="json"
        )
    assert response.status_code == 503, response.content
    assert response["Retry-After"]
    assert response.json()["error"]["code"] == "unavailable"
    assert not Hold.objects.exists()
    assert not HeldThrough.objects.exists()
    assert not AuditEntry.objects.filter(action="hold.place").exists()
    assert not EventDelivery.objects.exists()
