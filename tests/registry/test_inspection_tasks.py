"""`POST artefacts/inspect/`: small artefacts are hashed inside the request; above
PEDIGREE_INSPECT_INLINE_MAX_BYTES a task does it (through the outbox) and the client polls the
inspection it is given, which nobody else may read."""

import json
from pathlib import Path

import pytest

from pedigree_client.artefacts import inspect_artefact
from registry import services, tasks
from registry.models import ArtefactInspection, AuditEntry, ModelVersion, OutboxMessage
from tests.registry.test_artefacts import build_full_model, write
from tests.registry.test_tenancy import INSPECT

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(settings, tmp_path) -> Path:
    store = tmp_path / "store"
    for team in ("acme", "globex"):
        (store / "teams" / team).mkdir(parents=True)
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    return store


@pytest.fixture
def large(settings, store) -> Path:
    """An artefact above the inline limit."""
    folder = build_full_model(store / "teams" / "acme" / "big")
    settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES = 100
    return folder


def test_a_small_artefact_is_inspected_inside_the_request(api_for, engineer, store):
    folder = build_full_model(store / "teams" / "acme" / "small")
    response = api_for(engineer).post(INSPECT, {"path": "teams/acme/small"}, format="json")
    assert response.status_code == 200
    assert response.json()["manifest"]["digest"] == inspect_artefact(folder).digest
    assert not ArtefactInspection.objects.exists() and not OutboxMessage.objects.exists()


def test_a_large_artefact_is_inspected_by_a_task_after_commit(
    api_for, engineer, large, django_capture_on_commit_callbacks
):
    api = api_for(engineer)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post(INSPECT, {"path": "teams/acme/big"}, format="json")

    assert response.status_code == 202, response.json()
    assert len(callbacks) >= 1
    handle = response.json()
    assert response["Location"] == handle["url"]
    message = OutboxMessage.objects.get()
    assert message.task == "registry.tasks.inspect_artefact" and message.sent_at is not None
    assert handle["size"] == sum(p.stat().st_size for p in large.rglob("*") if p.is_file())

    polled = api.get(f"/api/v1/artefacts/inspections/{handle['id']}/")
    assert polled.status_code == 200
    body = polled.json()
    assert body["status"] == "done" and body["error"] == {}
    assert body["manifest"]["digest"] == inspect_artefact(large).digest
    assert body["parameter_count"] == 16
    assert AuditEntry.objects.filter(action="artefact_inspection.create").count() == 1
    assert not ModelVersion.objects.exists()


def test_until_its_task_runs_the_inspection_is_pending(api_for, engineer, large):
    api = api_for(engineer)
    # No commit callbacks run here: as with a broker that has not handed the task out yet.
    response = api.post(INSPECT, {"path": "teams/acme/big"}, format="json")
    assert response.status_code == 202
    handle = response.json()
    assert handle["status"] == "pending" and handle["manifest"] == {}
    assert handle["parameter_count"] is None

    assert tasks.inspect_artefact.apply(args=[handle["id"]]).result == "done"
    # Redelivered: claimed once only.
    assert tasks.inspect_artefact.apply(args=[handle["id"]]).result == "skipped"
    assert api.get(handle["url"]).json()["status"] == "done"


def test_another_teams_engineer_gets_404_for_the_handle(
    api_for, engineer, outsider, compliance_user, large
):
    handle = api_for(engineer).post(INSPECT, {"path": "teams/acme/big"}, format="json").json()
    url = f"/api/v1/artefacts/inspections/{handle['id']}/"
    response = api_for(outsider).get(url)
    assert response.status_code == 404
    assert handle["path"] not in response.content.decode()
    assert api_for(None).get(url).status_code == 401
    assert api_for(compliance_user).get(url).status_code == 200


def test_paths_outside_the_area_are_refused_before_any_task(api_for, outsider, large):
    response = api_for(outsider).post(INSPECT, {"path": "teams/acme/big"}, format="json")
    assert response.status_code == 404
    assert not ArtefactInspection.objects.exists() and not OutboxMessage.objects.exists()


def test_bad_files_found_by_the_task_are_its_error(
    api_for, engineer, large, django_capture_on_commit_callbacks
):
    write(large / "extra.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00 {}     ")
    with django_capture_on_commit_callbacks(execute=True):
        handle = api_for(engineer).post(INSPECT, {"path": "teams/acme/big"}, format="json").json()

    inspection = api_for(engineer).get(handle["url"]).json()
    assert inspection["status"] == "failed" and inspection["manifest"] == {}
    assert inspection["error"]["status"] == 400
    assert inspection["error"]["code"] == "header_not_at_start"
    assert inspection["error"]["fields"]["artefact_path"]


def test_old_inspections_are_swept(api_for, engineer, large, settings):
    handle = api_for(engineer).post(INSPECT, {"path": "teams/acme/big"}, format="json").json()
    ArtefactInspection.objects.update(
        created_at=ArtefactInspection.objects.get().created_at.replace(year=2000)
    )
    assert services.inspections_sweep() == 1
    assert api_for(engineer).get(handle["url"]).status_code == 404


def test_a_server_fault_in_the_task_ends_the_inspection(api_for, engineer, large, monkeypatch):
    handle = api_for(engineer).post(INSPECT, {"path": "teams/acme/big"}, format="json").json()

    def broken(**kwargs):
        raise RuntimeError("disk gone")

    monkeypatch.setattr("registry.services.inspections.artefact_inspect", broken)
    with pytest.raises(RuntimeError):
        tasks.inspect_artefact.apply(args=[handle["id"]], throw=True)

    inspection = api_for(engineer).get(handle["url"]).json()
    assert inspection["status"] == "failed"
    assert inspection["error"]["status"] == 500 and "disk gone" not in json.dumps(inspection)
