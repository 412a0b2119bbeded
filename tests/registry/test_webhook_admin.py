"""Webhook endpoints edited in the admin go through the services and are audited."""

import json

import pytest
from django.contrib.auth.models import Permission

from registry import services
from registry.errors import PermissionRefused
from registry.models import AuditEntry, EventDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/registry/webhookendpoint/add/"


@pytest.fixture
def officer(client, make_user):
    user = make_user("olivia", compliance=True, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__model="webhookendpoint"))
    client.force_login(user)
    return user


@pytest.fixture
def endpoint(compliance_user) -> WebhookEndpoint:
    return services.webhook_endpoint_create(
        actor=compliance_user,
        name="ci",
        url="https://hooks.example.com/ci",
        secret="first-secret",
        events=["version.promoted"],
    )


def form(**values: str) -> dict[str, str]:
    return {
        "name": "ci",
        "url": "https://hooks.example.com/ci",
        "secret": "first-secret",
        "events": '["version.promoted"]',
        "active": "on",
        **values,
    }


def secret_in_audit(secret: str) -> bool:
    return any(
        secret in json.dumps([entry.before, entry.after]) for entry in AuditEntry.objects.all()
    )


def test_create_is_audited_without_the_secret(client, officer):
    response = client.post(ADD_URL, form())
    assert response.status_code == 302, response.content
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.events, endpoint.active) == (
        "https://hooks.example.com/ci",
        ["version.promoted"],
        True,
    )
    entry = AuditEntry.objects.get(action="webhook_endpoint.create")
    assert entry.actor == officer and entry.object_id == str(endpoint.pk)
    assert entry.after["url"] == "https://hooks.example.com/ci"
    assert "secret" not in entry.after and not secret_in_audit("first-secret")


def test_edit_audits_before_and_after(client, officer, endpoint):
    url = f"/admin/registry/webhookendpoint/{endpoint.pk}/change/"
    response = client.post(
        url, form(url="https://hooks.example.com/new", secret="second-secret", events="[]")
    )
    assert response.status_code == 302, response.content
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.secret, endpoint.events) == (
        "https://hooks.example.com/new",
        "second-secret",
        [],
    )
    entry = AuditEntry.objects.get(action="webhook_endpoint.update")
    assert entry.actor == officer
    assert entry.before["url"] == "https://hooks.example.com/ci"
    assert entry.before["events"] == ["version.promoted"]
    assert entry.after["url"] == "https://hooks.example.com/new" and entry.after["events"] == []
    assert entry.after["secret_replaced"] is True
    assert not secret_in_audit("first-secret") and not secret_in_audit("second-secret")


def test_delete_is_audited(client, officer, endpoint):
    url = f"/admin/registry/webhookendpoint/{endpoint.pk}/delete/"
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302, response.content
    assert not WebhookEndpoint.objects.exists()
    entry = AuditEntry.objects.get(action="webhook_endpoint.delete")
    assert entry.actor == officer and entry.object_id == str(endpoint.pk)
    assert entry.before["name"] == "ci" and entry.after == {"deliveries_deleted": 0}


def test_bulk_delete_goes_through_the_service(client, officer, endpoint, compliance_user):
    other = services.webhook_endpoint_create(
        actor=compliance_user, name="pager", url="https://hooks.example.com/p", secret="s"
    )
    response = client.post(
        "/admin/registry/webhookendpoint/",
        {"action": "delete_selected", "_selected_action": [endpoint.pk, other.pk], "post": "yes"},
    )
    assert response.status_code == 302, response.content
    assert not WebhookEndpoint.objects.exists()
    assert AuditEntry.objects.filter(action="webhook_endpoint.delete").count() == 2


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"url": "not a url"}, "url", "Enter a valid URL."),
        ({"name": ""}, "name", "This field is required."),
        ({"events": '"version.promoted"'}, "events", "JSON list of names"),
        ({"events": '{"version.promoted": 1}'}, "events", "JSON list of names"),
        ({"events": '["version.promoted", 3]'}, "events", "JSON list of names"),
    ],
)
def test_invalid_create_shows_a_form_error_and_writes_nothing(
    client, officer, values, field, message
):
    response = client.post(ADD_URL, form(**values))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEntry.objects.exists()


def test_invalid_edit_shows_a_form_error_and_changes_nothing(client, officer, endpoint):
    audited = AuditEntry.objects.count()
    url = f"/admin/registry/webhookendpoint/{endpoint.pk}/change/"
    response = client.post(url, form(url="https://hooks.example.com/new", events='"all"'))
    assert response.status_code == 200
    assert "JSON list of names" in " ".join(response.context["adminform"].form.errors["events"])
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events) == ("https://hooks.example.com/ci", ["version.promoted"])
    assert AuditEntry.objects.count() == audited


def test_only_compliance_or_administrators_manage_endpoints(engineer, endpoint):
    with pytest.raises(PermissionRefused):
        services.webhook_endpoint_create(
            actor=engineer, name="mine", url="https://hooks.example.com/m", secret="s"
        )
    with pytest.raises(PermissionRefused):
        services.webhook_endpoint_update(
            actor=engineer, endpoint=endpoint, changes={"active": False}
        )
    with pytest.raises(PermissionRefused):
        services.webhook_endpoint_delete(actor=engineer, endpoint=endpoint)
    assert WebhookEndpoint.objects.filter(active=True).count() == 1


def test_new_endpoint_receives_the_events_it_names(compliance_user, endpoint):
    deliveries = services.event_publish(kind="version.promoted", payload={})
    assert [d.endpoint for d in deliveries] == [endpoint]
    assert not services.event_publish(kind="version.rejected", payload={})
    assert EventDelivery.objects.count() == 1
