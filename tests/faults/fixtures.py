"""Fixtures of the fault tests, imported by the conftest of each folder that uses them: a broker
that is down, and a webhook receiver that counts what it gets."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from config.celery import app
from tests.faults.server import free_port


def forget_connections() -> None:
    """Drop the app's pooled broker connections, so the next publish connects to the URL now set
    (Celery keeps no public handle on them)."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down():
    """This process's broker is unreachable (a closed port) until the test calls the returned
    function, which brings the previous broker back (the real one, or the in-process one of
    the embedded default)."""
    conf = app.conf
    previous = conf.broker_url, conf.broker_write_url, conf.task_always_eager
    conf.broker_url = conf.broker_write_url = f"redis://127.0.0.1:{free_port()}/0"
    conf.task_always_eager = False
    forget_connections()

    def restore():
        conf.broker_url, conf.broker_write_url, conf.task_always_eager = previous
        forget_connections()

    yield restore
    restore()


@pytest.fixture
def receiver(settings):
    """An HTTP server recording every webhook delivery it acknowledges (by delivery id). Set
    `hang_first` to a number of seconds to keep the first request waiting that long, then drop
    it unacknowledged."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if server.hang_first and not server.hung:
                # A POST whose sender dies meanwhile: the receiver never acknowledges it (a
                # receiver that did would see it twice, and dedupes by X-Pedigree-Delivery).
                server.hung = True
                time.sleep(server.hang_first)
                return
            received.append(
                {"delivery": self.headers["X-Pedigree-Delivery"], "body": json.loads(body)}
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.hang_first, server.hung = 0.0, False
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    settings.PEDIGREE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # egress refuses loopback by default
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
