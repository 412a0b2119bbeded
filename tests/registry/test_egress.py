"""Webhook egress: destinations are checked when an endpoint is created or changed and again at
each delivery; loopback, private, link-local and metadata addresses are refused unless
allow-listed, redirects are not followed, and stored errors hold status and reason only."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from registry import services, tasks
from registry.errors import InvalidInput
from registry.models import DeliveryStatus, EventDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

HOSTILE_TARGETS = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/hook",
    "http://192.168.1.1/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one integer
    "file:///etc/passwd",
    "http://user:pass@example.com/hook",
]


@pytest.mark.parametrize("url", HOSTILE_TARGETS)
def test_hostile_destinations_are_refused_at_creation(compliance_user, url):
    with pytest.raises(InvalidInput) as error:
        services.webhook_endpoint_create(actor=compliance_user, name="x", url=url, secret="s")
    assert "url" in error.value.fields
    assert not WebhookEndpoint.objects.exists()


def test_changing_the_url_to_a_private_address_is_refused(compliance_user, monkeypatch):
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("93.184.216.34", 443))]
    )
    endpoint = services.webhook_endpoint_create(
        actor=compliance_user, name="x", url="https://hooks.example.com/ci", secret="s"
    )
    with pytest.raises(InvalidInput):
        services.webhook_endpoint_update(
            actor=compliance_user, endpoint=endpoint, changes={"url": "http://10.1.2.3/"}
        )


class _Canary(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self):
        _Canary.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.end_headers()
        self.wfile.write(b"internal secret body")

    def log_message(self, *args):
        pass


@pytest.fixture
def canary():
    server = HTTPServer(("127.0.0.1", 0), _Canary)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Canary.hits = []
    yield server
    server.shutdown()


def deliver_to(url: str) -> EventDelivery:
    endpoint = WebhookEndpoint.objects.create(name="e", url=url, secret="s", events=[])
    delivery = EventDelivery.objects.create(endpoint=endpoint, event="version.held", payload={})
    tasks.deliver_event.delay(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_a_loopback_canary_receives_nothing(canary, monkeypatch):
    """A name that resolved to a public address at creation and to loopback at delivery (DNS
    rebinding) is checked again: nothing reaches the canary."""
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("127.0.0.1", canary.server_port))]
    )
    delivery = deliver_to(f"http://rebind.example.com:{canary.server_port}/hook")
    assert delivery.status == DeliveryStatus.FAILED
    assert "non-public address" in delivery.last_error
    assert _Canary.hits == []


def test_redirects_are_not_followed_and_bodies_not_stored(canary, settings):
    settings.PEDIGREE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    delivery = deliver_to(f"http://127.0.0.1:{canary.server_port}/hook")
    assert _Canary.hits == ["/hook"]  # called once, the redirect not followed
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "HTTP 302 Found"
