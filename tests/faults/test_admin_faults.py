"""The admin under transient database faults: a save or an action the database aborts to break a
deadlock is retried; one that keeps failing (a deadlock past the retries, a lock wait timed out,
the database unreachable) says "nothing was changed, try again" instead of a 500, and nothing
is half-written."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.db import OperationalError, connection
from django.utils import timezone

from lineage.models import Hold
from lineage.services import LINEAGE_LOCK_KEY
from registry import services
from registry.admin_base import TRANSIENT_MESSAGE
from registry.audit import audit_record
from registry.models import AuditEntry, CheckWaiver
from registry.retry import ATTEMPTS

# Transactional: the admin's writes run (and are retried) in transactions of their own.
pytestmark = pytest.mark.django_db(transaction=True)


class _Deadlock(Exception):
    sqlstate = "40P01"  # what psycopg reports for PostgreSQL's deadlock_detected


def deadlock() -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = _Deadlock()
    return error


def failing(times: int):
    """`audit_record` that fails like a deadlock victim the first `times` calls, then works."""
    calls = []

    def record(**kwargs):
        calls.append(kwargs["action"])
        if len(calls) <= times:
            raise deadlock()
        return audit_record(**kwargs)

    record.calls = calls
    return record


@pytest.fixture
def officer(make_user):
    return make_user("olivia", compliance=True, is_staff=True, is_superuser=True)


@pytest.fixture
def version(make_version):
    return make_version()


def hold_form(version) -> dict:
    return {"version": version.pk, "category": "security", "reason": "CVE in tokenizer"}


def shown(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_hold_whose_save_keeps_deadlocking_is_shown_on_the_form_and_not_placed(
    client, officer, version
):
    client.force_login(officer)
    record = failing(times=100)
    with mock.patch("lineage.services.holds.audit_record", record):
        response = client.post("/admin/lineage/hold/add/", hold_form(version))

    assert response.status_code == 200  # the form again, as filled in
    assert TRANSIENT_MESSAGE in response.content.decode()
    assert response.context["adminform"].form["reason"].value() == "CVE in tokenizer"
    assert len(record.calls) == ATTEMPTS  # retried like a service, then given up
    assert not Hold.objects.exists()
    assert not AuditEntry.objects.filter(action="hold.place").exists()


def test_a_hold_whose_save_deadlocked_once_is_placed_once(client, officer, version):
    client.force_login(officer)
    record = failing(times=1)
    with mock.patch("lineage.services.holds.audit_record", record):
        response = client.post("/admin/lineage/hold/add/", hold_form(version))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Hold.objects.count() == 1
    assert AuditEntry.objects.filter(action="hold.place").count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a real lock wait: PostgreSQL")
def test_a_hold_whose_lock_wait_times_out_is_shown_on_the_form_and_not_placed(
    client, officer, version
):
    import psycopg

    db = connection.settings_dict
    client.force_login(officer)
    # Another transaction holds the lineage write lock; this connection waits 300 ms at most.
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    ) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", [LINEAGE_LOCK_KEY])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        try:
            response = client.post("/admin/lineage/hold/add/", hold_form(version))
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
            other.rollback()

    assert response.status_code == 200
    assert TRANSIENT_MESSAGE in response.content.decode()
    assert not Hold.objects.exists()
    assert not AuditEntry.objects.filter(action="hold.place").exists()


@pytest.fixture
def waivers(officer, make_version):
    expires = timezone.now() + timedelta(days=7)
    return [
        services.check_waiver_grant(
            actor=officer,
            version=make_version(),
            check_name="quality",
            reason="accepted risk",
            expires_at=expires,
        )
        for _ in range(2)
    ]


def revoke(client, waivers):
    return client.post(
        "/admin/registry/checkwaiver/",
        {"action": "revoke", "_selected_action": [w.pk for w in waivers], "index": 0},
    )


def test_an_action_that_fails_midway_changes_nothing_and_says_so(client, officer, waivers):
    client.force_login(officer)
    # The first waiver is revoked, the second's audit keeps deadlocking.
    calls = []

    def record(**kwargs):
        calls.append(kwargs)
        if len(calls) % 2 == 0:
            raise deadlock()
        return audit_record(**kwargs)

    with mock.patch("registry.services.governance.audit_record", record):
        response = revoke(client, waivers)

    assert response.status_code == 302
    assert shown(response) == [TRANSIENT_MESSAGE]
    assert len(calls) == 2 * ATTEMPTS
    assert not CheckWaiver.objects.filter(revoked_at__isnull=False).exists()
    assert not AuditEntry.objects.filter(action="waiver.revoke").exists()


def test_an_action_that_deadlocked_once_is_done_once(client, officer, waivers):
    client.force_login(officer)
    with mock.patch("registry.services.governance.audit_record", failing(times=1)):
        response = revoke(client, waivers)

    assert response.status_code == 302
    assert TRANSIENT_MESSAGE not in shown(response)
    assert CheckWaiver.objects.filter(revoked_at__isnull=False).count() == 2
    assert AuditEntry.objects.filter(action="waiver.revoke").count() == 2


def test_a_governance_action_the_database_refuses_says_so(client, officer, version):
    client.force_login(officer)
    page = f"/admin/registry/modelversion/{version.pk}/governance/"
    lock_timeout = OperationalError("canceling statement due to lock timeout")
    with mock.patch("registry.services.version_promote", side_effect=lock_timeout):
        response = client.post(
            page,
            {"action": "promote", "stage": "staging", "use": "internal", "distribution": "hosted"},
        )

    assert response.status_code == 302
    assert TRANSIENT_MESSAGE in shown(response)
    version.refresh_from_db()
    assert version.stage == "development"


def test_an_admin_page_the_database_cannot_serve_is_503(client, officer, version):
    client.force_login(officer)
    unreachable = OperationalError("connection to server at 127.0.0.1 failed")
    with mock.patch("registry.admin.governance.versions_visible_to", side_effect=unreachable):
        response = client.get(f"/admin/registry/modelversion/{version.pk}/governance/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert TRANSIENT_MESSAGE in response.content.decode()
