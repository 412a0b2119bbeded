"""The corpus's hostile webhook targets through every way an endpoint is made or used: the admin
form, the service, and a delivery to an endpoint stored before the rules applied. A loopback
canary listens behind the loopback ones and must receive nothing."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from registry import services, tasks
from registry.errors import InvalidInput
from registry.models import DeliveryStatus, EventDelivery, WebhookEndpoint
from tests.registry.hostile_corpus import webhook_targets

pytestmark = pytest.mark.django_db

CANARY_PORT_PLACEHOLDER = 1  # the ids of the rows; the real port is known once it listens
TARGETS = webhook_targets(CANARY_PORT_PLACEHOLDER)


class _Canary(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self):
        _Canary.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"canary body")

    do_GET = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def canary():
    server = HTTPServer(("127.0.0.1", 0), _Canary)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def target(canary, request) -> str:
    """The row's target, its loopback port the canary's."""
    _Canary.hits = []
    yield webhook_targets(canary.server_port)[request.param]
    assert _Canary.hits == []


ROWS = pytest.mark.parametrize("target", range(len(TARGETS)), ids=TARGETS, indirect=True)


@ROWS
def test_the_admin_refuses_hostile_targets(admin_client, target):
    response = admin_client.post(
        "/admin/registry/webhookendpoint/add/",
        {"name": "hook", "url": target, "secret": "s", "events": "[]", "active": "on"},
    )
    assert response.status_code == 200  # the form again, with its error
    assert response.context["adminform"].form.errors or response.context["errors"]
    assert not WebhookEndpoint.objects.exists()


@ROWS
def test_the_service_refuses_hostile_targets(compliance_user, target):
    with pytest.raises(InvalidInput) as caught:
        services.webhook_endpoint_create(actor=compliance_user, name="x", url=target, secret="s")
    assert "url" in caught.value.fields
    assert not WebhookEndpoint.objects.exists()


@ROWS
def test_a_stored_hostile_target_is_refused_at_delivery(target):
    endpoint = WebhookEndpoint.objects.create(name="old", url=target, secret="s", events=[])
    delivery = EventDelivery.objects.create(endpoint=endpoint, event="version.held", payload={})

    assert tasks.deliver_event.apply(args=[delivery.pk]).result == "failed"

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error
    assert "canary body" not in delivery.last_error
