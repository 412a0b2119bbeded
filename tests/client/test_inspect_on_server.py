"""The client and `pedigree artefacts inspect --on-server` inspect files on the server, polling
transparently when the server hands a large artefact to a task."""

import json
import time
from types import SimpleNamespace

import pytest
from rest_framework.authtoken.models import Token

from pedigree_client.cli import main
from pedigree_client.errors import InvalidInput, NotFound
from registry import outbox, tasks
from registry.models import ArtefactInspection, InspectionStatus
from tests.registry.test_artefacts import build_full_model, write

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def area(store):
    area = store / "teams" / "acme"
    area.mkdir(parents=True)
    return area


@pytest.fixture
def worker_later(monkeypatch):
    """As with a broker: the request answers before the task runs; the task runs when the
    client first waits to poll again."""
    monkeypatch.setattr(outbox, "outbox_relay", lambda **kwargs: None)
    waits = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        for pending in ArtefactInspection.objects.filter(status=InspectionStatus.PENDING):
            tasks.inspect_artefact.apply(args=[str(pending.pk)])

    monkeypatch.setattr(
        "pedigree_client.client.time", SimpleNamespace(sleep=sleep, monotonic=time.monotonic)
    )
    return waits


def test_client_polls_a_large_inspection_to_its_end(pedigree, area, settings, worker_later):
    settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES = 100
    folder = build_full_model(area / "big")

    answer = pedigree.inspect("teams/acme/big", interval=0.01)

    assert worker_later == [0.01]  # it was pending once
    assert answer["parameter_count"] == 16
    assert answer["manifest"]["digest"] == ArtefactInspection.objects.get().manifest["digest"]
    assert {file["path"] for file in answer["manifest"]["files"]} == {
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
    }


def test_client_raises_the_error_the_task_stored(pedigree, area, settings, worker_later):
    settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES = 100
    folder = build_full_model(area / "big")
    write(folder / "extra.safetensors", b"\x02\x00\x00\x00\x00\x00\x00\x00[]")

    with pytest.raises(InvalidInput) as caught:
        pedigree.inspect("teams/acme/big", interval=0.01)

    assert caught.value.status == 400 and caught.value.code == "header_not_object"


def test_small_inspections_answer_at_once_and_others_areas_are_not_found(pedigree, store, area):
    build_full_model(area / "small")
    assert pedigree.inspect("teams/acme/small")["parameter_count"] == 16
    build_full_model(store / "teams" / "globex" / "secret")
    with pytest.raises(NotFound):
        pedigree.inspect("teams/globex/secret")


def test_cli_inspects_on_the_server(live_server, engineer, area, settings, monkeypatch, capsys):
    settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES = 100
    build_full_model(area / "big")
    token = Token.objects.create(user=engineer).key
    base = ["--url", live_server.url, "--token", token, "artefacts", "inspect"]

    assert main([*base, "teams/acme/big", "--on-server", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["digest"] == ArtefactInspection.objects.get().manifest["digest"]

    assert main([*base, "../etc/passwd", "--on-server"]) == 2
    err = capsys.readouterr().err
    assert "contains '..'" in err and "Traceback" not in err


def test_client_gives_up_waiting_at_its_timeout(pedigree, area, settings, monkeypatch):
    settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES = 100
    monkeypatch.setattr(outbox, "outbox_relay", lambda **kwargs: None)  # never runs
    build_full_model(area / "big")
    with pytest.raises(TimeoutError, match="still pending"):
        pedigree.inspect("teams/acme/big", interval=0.01, timeout=0)
    assert ArtefactInspection.objects.get().status == InspectionStatus.PENDING
