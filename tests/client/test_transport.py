"""What the client does with answers a test server cannot easily give: 503 and 429 retried
with back-off honouring Retry-After, refs routed in version paths, and a server that offers
dry runs refusing a registration before anything is uploaded. A scripted local HTTP stub."""

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pedigree_client import Client, InvalidInput, Unavailable
from pedigree_client.artefacts import inspect_artefact
from tests.registry.test_artefacts import build_full_model

VERSION = {
    "id": 7,
    "ref": "acme/intent@1.1",
    "model": "acme/intent",
    "model_id": 3,
    "version": "1.1",
    "stage": "development",
    "description": "",
    "artefact_uri": "",
    "artefact_digest": "ab" * 32,
    "artefact_size": None,
    "parameter_count": None,
    "licence_declared": "Apache-2.0",
    "licence_concluded": "",
    "risk_tier": "limited",
    "intended_use": "",
    "out_of_scope_uses": "",
    "known_limitations": "",
    "uses_sensitive_personal_data": False,
    "domain": "",
    "hub_repo_id": "",
    "hub_revision": "",
    "registered_by": "alice",
    "registered_at": "2026-01-02T03:04:05.123456Z",
    "updated_at": "2026-01-02T03:04:05Z",
}


def unavailable(status: int = 503, retry_after: str | None = None) -> "Answer":
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    message = "Down for maintenance." if status == 503 else "Too many requests."
    return Answer(
        status, {"error": {"status": status, "code": "busy", "message": message}}, headers
    )


@dataclass
class Answer:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    method: str
    path: str
    body: bytes
    at: float


class Stub:
    """Answers each request with the next scripted answer for its method and path."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], list[Answer]] = {}
        self.received: list[Received] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?")[0]
                stub.received.append(Received(self.command, path, body, time.monotonic()))
                answers = stub.script.get((self.command, path)) or [
                    Answer(404, {"error": {"status": 404, "code": "not_found", "message": "No."}})
                ]
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                data = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                for name, value in {"Content-Type": "application/json", **answer.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.script[(method, f"/api/v1/{path}")] = list(answers)

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.received if method in (None, r.method)]


@pytest.fixture
def stub() -> Iterator[Stub]:
    stub = Stub()
    thread = threading.Thread(target=stub.server.serve_forever, daemon=True)
    thread.start()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


def test_503_is_retried_after_retry_after_then_succeeds(stub):
    stub.on(
        "GET", "versions/acme%2Fintent@1.1/", unavailable(retry_after="1"), Answer(200, VERSION)
    )

    version = Client(stub.url, "token").version("acme/intent@1.1")

    assert version.ref == "acme/intent@1.1" and version.registered_at.year == 2026
    first, second = stub.received
    assert second.at - first.at >= 1  # waited as told
    # The ref travels in the path, its "/" encoded: no lookup through the versions list.
    assert stub.paths() == ["/api/v1/versions/acme%2Fintent@1.1/"] * 2


def test_back_off_is_exponential_and_bounded(stub):
    stub.on("GET", "versions/7/", unavailable(429))
    client = Client(stub.url, "token", retries=3, backoff=0.05)

    with pytest.raises(Unavailable) as busy:
        client.version(7)

    assert (busy.value.status, busy.value.code, busy.value.retry_after) == (429, "busy", None)
    times = [r.at for r in stub.received]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) == 4
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2


def test_a_retry_after_beyond_max_delay_is_not_waited_for(stub):
    stub.on("GET", "versions/7/", unavailable(retry_after="3600"))

    with pytest.raises(Unavailable) as busy:
        Client(stub.url, "token", max_delay=10).version(7)

    assert busy.value.retry_after == 3600
    assert "Down for maintenance. (HTTP 503)" in str(busy.value)
    assert len(stub.received) == 1


def test_a_dry_run_refusal_uploads_nothing(stub, tmp_path):
    fields = {
        "version": ["acme/intent already has a version '1.1'; pick a new label."],
        "parents[0].version": ["No version acme/ghost@v1 that you can see."],
    }
    envelope = {"status": 400, "code": "invalid", "message": "version: taken", "fields": fields}
    stub.on("POST", "registrations/", Answer(400, {"error": envelope}))
    folder = build_full_model(tmp_path / "out")

    with pytest.raises(InvalidInput) as refused:
        Client(stub.url, "token").register(
            folder, model="acme/intent", version="1.1", base="acme/ghost@v1"
        )

    assert refused.value.fields == fields  # every problem at once
    assert stub.paths() == ["/api/v1/registrations/"]
    dry_run = json.loads(stub.received[0].body)
    assert dry_run["dry_run"] is True
    assert dry_run["artefact_digest"] == inspect_artefact(folder).digest


def test_an_upload_is_sent_whole_again_after_a_503(stub, tmp_path):
    folder = build_full_model(tmp_path / "out")
    manifest = inspect_artefact(folder)
    unknown = {"dry_run": ["Unknown field. Known fields: model, version."]}
    stub.on(
        "POST",
        "registrations/",
        Answer(
            400, {"error": {"status": 400, "code": "invalid", "message": "x", "fields": unknown}}
        ),
        Answer(201, {"version": VERSION, "parents": [], "training_run": None}),
    )
    stub.on(
        "POST",
        "artefacts/uploads/",
        unavailable(retry_after="0"),
        Answer(201, {"id": "u1", "digest": manifest.digest}),
    )

    version = Client(stub.url, "token").register(folder, model="acme/intent", version="1.1")

    assert version.id == 7
    first, second = (r.body for r in stub.received if r.path.endswith("uploads/"))
    assert first == second and len(first) > manifest.total_size
    assert json.loads(stub.received[-1].body)["artefact_upload"] == "u1"
