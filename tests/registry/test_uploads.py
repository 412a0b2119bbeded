"""Artefact uploads through the API and the `pedigree artefacts` client commands."""

import json
import os
import struct
import tracemalloc
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.authtoken.models import Token

from pedigree_client.api import ApiClient
from pedigree_client.artefacts import inspect_artefact
from pedigree_client.cli import main
from pedigree_client.errors import CliError
from pedigree_client.uploads import MultipartBody, upload_artefact
from registry import services, storage
from registry.errors import InvalidInput
from registry.models import ArtefactUpload, AuditEntry
from tests.registry.test_artefacts import MALFORMED, build_full_model, save_small_model, write

UPLOADS = "/api/v1/artefacts/uploads/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(settings, tmp_path) -> Path:
    store = tmp_path / "store"
    store.mkdir()
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    return store


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code
    return body["error"]


def post_files(api, files: dict[str, bytes], **fields):
    data = {name: SimpleUploadedFile(Path(name).name, content) for name, content in files.items()}
    return api.post(UPLOADS, {**data, **fields}, format="multipart")


def folder_files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def nothing_stored(store: Path) -> bool:
    uploads = store / "uploads"
    return not ArtefactUpload.objects.exists() and (
        not uploads.exists() or not any(uploads.iterdir())
    )


def test_folder_upload_is_streamed_to_the_store_and_inspected(api_for, engineer, store, tmp_path):
    folder = build_full_model(tmp_path / "model")
    expected = inspect_artefact(folder)

    response = post_files(api_for(engineer), folder_files(folder))

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["digest"] == expected.digest
    assert body["size"] == expected.total_size
    assert body["format"] == "full" and body["parameter_count"] == 16
    assert body["created_by"] == "alice" and body["consumed_by"] is None
    assert [f["path"] for f in body["manifest"]["files"]] == [f.path for f in expected.files]
    upload = ArtefactUpload.objects.get(pk=body["id"])
    stored = storage.local_path(upload.store_path)
    assert stored == store / "uploads" / body["id"]
    assert (stored / "1_Pooling" / "config.json").read_bytes() == b"{}"
    entry = AuditEntry.objects.get(action="artefact_upload.create")
    assert entry.after["digest"] == expected.digest and entry.actor == engineer


def test_upload_belongs_to_its_uploader(
    api_for, engineer, outsider, compliance_user, store, tmp_path
):
    weights = save_small_model(tmp_path / "model.safetensors").read_bytes()
    upload_id = post_files(api_for(engineer), {"model.safetensors": weights}).json()["id"]

    assert api_for(engineer).get(f"{UPLOADS}{upload_id}/").json()["id"] == upload_id
    assert [u["id"] for u in api_for(engineer).get(UPLOADS).json()["results"]] == [upload_id]
    for other in (outsider, compliance_user):
        assert api_for(other).get(f"{UPLOADS}{upload_id}/").status_code == 404
        assert api_for(other).get(UPLOADS).json()["results"] == []
    assert api_for(None).get(f"{UPLOADS}{upload_id}/").status_code == 401


@pytest.mark.parametrize(("code", "content"), MALFORMED, ids=[code for code, _ in MALFORMED])
def test_malformed_weights_are_refused_and_nothing_is_kept(api_for, engineer, store, code, content):
    response = post_files(api_for(engineer), {"model.safetensors": content, "config.json": b"{}"})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == code
    assert "model.safetensors" in error["message"]
    assert error["fields"]["artefact_upload"]
    assert nothing_stored(store)
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("name", ["pytorch_model.bin", "ckpt/optimizer.pt", "weights.PKL"])
def test_pickle_file_is_refused_by_name(api_for, engineer, store, tmp_path, name):
    weights = save_small_model(tmp_path / "model.safetensors").read_bytes()

    response = post_files(api_for(engineer), {"model.safetensors": weights, name: b"\x80\x04."})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "pickle_refused"
    assert "safetensors" in error["message"] and name in error["message"]
    assert nothing_stored(store)


@pytest.mark.parametrize(
    "name",
    ["../escape.json", "/etc/passwd.json", ".hidden.json", "a//b.json", "a\\b.json", "./a.json"],
)
def test_unsafe_names_are_refused(api_for, engineer, store, tmp_path, name):
    weights = save_small_model(tmp_path / "model.safetensors").read_bytes()

    response = post_files(api_for(engineer), {"model.safetensors": weights, name: b"{}"})

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_file_name"
    assert nothing_stored(store)
    assert not (store.parent / "escape.json").exists()


def test_files_only_and_at_least_one(api_for, engineer, store, tmp_path):
    weights = save_small_model(tmp_path / "model.safetensors").read_bytes()
    api = api_for(engineer)

    response = post_files(api, {"model.safetensors": weights}, note="x")
    assert response.status_code == 400 and error_of(response)["code"] == "unexpected_field"
    response = api.post(UPLOADS, {}, format="multipart")
    assert response.status_code == 400 and error_of(response)["code"] == "no_files"
    response = api.post(UPLOADS, {"path": "x"}, format="json")
    assert response.status_code == 415
    assert nothing_stored(store)


def test_folder_without_weights_is_refused(api_for, engineer, store):
    response = post_files(api_for(engineer), {"config.json": b"{}"})
    assert response.status_code == 400 and error_of(response)["code"] == "no_weights"
    assert nothing_stored(store)


def test_anonymous_cannot_upload(api_for, store, tmp_path):
    weights = save_small_model(tmp_path / "model.safetensors").read_bytes()
    assert post_files(api_for(None), {"model.safetensors": weights}).status_code == 401
    assert nothing_stored(store)


# --- the client ------------------------------------------------------------------------------


def test_multipart_body_streams_every_byte(tmp_path):
    first = write(tmp_path / "a.bin.part", os.urandom(3 * 1024 * 1024 + 7))
    second = write(tmp_path / "b", b"tiny")
    counted: list[int] = []
    body = MultipartBody([("dir/a", first), ("b", second)], on_read=counted.append)

    pieces = []
    while piece := body.read(16384):
        pieces.append(piece)
    sent = b"".join(pieces)

    assert len(sent) == len(body) == sum(counted)
    assert first.read_bytes() in sent and b'name="dir/a"; filename="a.bin.part"' in sent
    assert sent.endswith(b"--\r\n")


@pytest.fixture
def cli(live_server, monkeypatch, engineer, store):
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=engineer).key)
    return main


@pytest.mark.django_db(transaction=True)
def test_cli_upload_matches_local_digest(cli, capsys, tmp_path, store):
    folder = build_full_model(tmp_path / "model")

    assert cli(["artefacts", "upload", str(folder), "--json"]) == 0

    upload = json.loads(capsys.readouterr().out)
    assert upload["digest"] == inspect_artefact(folder).digest
    stored = ArtefactUpload.objects.get(pk=upload["id"])
    assert (storage.local_path(stored.store_path) / "1_Pooling" / "config.json").exists()


@pytest.mark.django_db(transaction=True)
def test_cli_upload_refuses_locally_before_sending(cli, capsys, tmp_path, store):
    folder = build_full_model(tmp_path / "model")
    write(folder / "pytorch_model.bin", b"\x80\x04.")

    assert cli(["artefacts", "upload", str(folder)]) == 2

    assert "pickle" in capsys.readouterr().err
    assert nothing_stored(store)


@pytest.mark.django_db(transaction=True)
def test_upload_detects_a_digest_mismatch(live_server, engineer, store, tmp_path, monkeypatch):
    folder = build_full_model(tmp_path / "model")
    client = ApiClient(live_server.url, Token.objects.create(user=engineer).key)
    real_read = MultipartBody.read

    def corrupting_read(self, size=-1):
        return real_read(self, size).replace(b"[UNK]", b"[XXX]")

    monkeypatch.setattr(MultipartBody, "read", corrupting_read)

    with pytest.raises(CliError, match="changed during the upload or were corrupted"):
        upload_artefact(client, folder)


@pytest.mark.django_db(transaction=True)
def test_upload_memory_stays_flat(live_server, engineer, store, tmp_path):
    """A 192 MiB file goes through the client, the server and inspection without either side
    holding it in memory."""
    size = 192 * 1024 * 1024
    header = json.dumps({"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}})
    path = write(tmp_path / "big" / "model.safetensors", struct.pack("<Q", len(header)))
    with path.open("ab") as stream:
        stream.write(header.encode())
        chunk = os.urandom(4 * 1024 * 1024)
        for _ in range(size // len(chunk)):
            stream.write(chunk)
    client = ApiClient(live_server.url, Token.objects.create(user=engineer).key)

    tracemalloc.start()
    try:
        upload_id = upload_artefact(client, path.parent)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert ArtefactUpload.objects.get(pk=upload_id).size == path.stat().st_size
    assert peak < 32 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


def test_cli_inspect_needs_no_server(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("PEDIGREE_TOKEN", raising=False)
    folder = build_full_model(tmp_path / "model")

    assert main(["artefacts", "inspect", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"sha256:{inspect_artefact(folder).digest}" in out
    assert "Parameters  16 (BF16 4, F32 12)" in out and "1_Pooling/config.json" in out

    assert main(["artefacts", "inspect", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "full"


def test_cli_inspect_reports_bad_files(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("PEDIGREE_TOKEN", raising=False)
    write(tmp_path / "model.safetensors", b"\x07\x00\x00")
    assert main(["artefacts", "inspect", str(tmp_path)]) == 2
    assert "model.safetensors is only 3 bytes" in capsys.readouterr().err
    assert main(["artefacts", "inspect", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --- reuse and expiry ------------------------------------------------------------------------


def expire(upload_id: str, hours: int = 25) -> None:
    ArtefactUpload.objects.filter(pk=upload_id).update(
        created_at=timezone.now() - timedelta(hours=hours)
    )


def test_the_same_files_sent_again_give_the_unregistered_upload_back(
    api_for, engineer, outsider, make_model, store, tmp_path
):
    files = folder_files(build_full_model(tmp_path / "model"))
    api = api_for(engineer)
    first = post_files(api, files)
    again = post_files(api, files)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert [path.name for path in (store / "uploads").iterdir()] == [first.json()["id"]]
    assert AuditEntry.objects.filter(action="artefact_upload.create").count() == 1
    # Another user's upload of the same files is their own.
    theirs = post_files(api_for(outsider), files)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    # Once a version holds it, or once it has expired, the files are stored anew.
    services.version_register(
        actor=engineer, model=make_model(), version="v1", artefact_upload=first.json()["id"]
    )
    second = post_files(api, files)
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    expire(second.json()["id"])
    assert post_files(api, files).status_code == 201


def test_an_upload_is_found_by_its_digest(api_for, engineer, outsider, store, tmp_path, settings):
    settings.PEDIGREE_UPLOAD_TTL_HOURS = 6
    folder = build_full_model(tmp_path / "model")
    upload = post_files(api_for(engineer), folder_files(folder)).json()
    digest = inspect_artefact(folder).digest
    created_at = ArtefactUpload.objects.get(pk=upload["id"]).created_at

    def ids(api, **params) -> list[str]:
        response = api.get(UPLOADS, params)
        assert response.status_code == 200, response.json()
        return [found["id"] for found in response.json()["results"]]

    api = api_for(engineer)
    assert ids(api, digest=digest) == [upload["id"]]
    assert ids(api, digest=digest, consumed="false") == [upload["id"]]
    assert ids(api, digest=digest, consumed="true") == []
    assert ids(api, digest="0" * 64) == []
    assert ids(api_for(outsider), digest=digest) == []
    assert upload["expires_at"] == (created_at + timedelta(hours=6)).isoformat().replace(
        "+00:00", "Z"
    )
    for bad in ({"digest": "sha256:abc"}, {"consumed": "perhaps"}, {"colour": "blue"}):
        response = api.get(UPLOADS, bad)
        assert response.status_code == 400
        assert set(error_of(response)["fields"]) == set(bad)


def test_the_sweep_deletes_expired_unregistered_uploads(
    api_for, engineer, make_model, store, tmp_path
):
    api = api_for(engineer)
    uploads = {}
    for name in ("expired", "fresh", "registered"):
        folder = build_full_model(tmp_path / name)
        write(folder / "notes.txt", name.encode())
        uploads[name] = post_files(api, folder_files(folder)).json()["id"]
    services.version_register(
        actor=engineer, model=make_model(), version="v1", artefact_upload=uploads["registered"]
    )
    expire(uploads["expired"])
    expire(uploads["registered"])

    assert services.uploads_sweep() == [uuid.UUID(uploads["expired"])]

    assert set(ArtefactUpload.objects.values_list("pk", flat=True)) == {
        uuid.UUID(uploads["fresh"]),
        uuid.UUID(uploads["registered"]),
    }
    assert sorted(path.name for path in (store / "uploads").iterdir()) == sorted(
        [uploads["fresh"], uploads["registered"]]
    )
    entry = AuditEntry.objects.get(action="artefact_upload.expire")
    assert entry.object_id == uploads["expired"] and entry.actor is None
    assert services.uploads_sweep() == []


def test_the_sweep_command_and_task(api_for, engineer, store, tmp_path, capsys, settings):
    from django.core.management import call_command

    from registry import tasks

    upload_id = post_files(
        api_for(engineer), folder_files(build_full_model(tmp_path / "model"))
    ).json()["id"]
    settings.PEDIGREE_UPLOAD_TTL_HOURS = 48
    expire(upload_id, hours=47)
    call_command("uploads_sweep")
    assert capsys.readouterr().out == "Deleted 0 upload(s) older than 48 h: none.\n"
    expire(upload_id, hours=49)
    call_command("uploads_sweep")
    assert capsys.readouterr().out == f"Deleted 1 upload(s) older than 48 h: {upload_id}.\n"
    assert nothing_stored(store)
    assert tasks.sweep_uploads.delay().get() == []
    assert settings.CELERY_BEAT_SCHEDULE["uploads-sweep"]["task"] == "registry.tasks.sweep_uploads"


def test_a_registration_of_an_upload_swept_meanwhile_is_refused(
    api_for, engineer, make_model, store, tmp_path, monkeypatch
):
    """The sweep may delete an upload between a registration's checks and its write."""
    from registry.services import artefacts

    upload_id = post_files(
        api_for(engineer), folder_files(build_full_model(tmp_path / "model"))
    ).json()["id"]
    prepare = artefacts.version_draft_prepare

    def prepare_then_sweep(**kwargs):
        draft = prepare(**kwargs)
        expire(upload_id)
        services.uploads_sweep()
        return draft

    monkeypatch.setattr(artefacts, "version_draft_prepare", prepare_then_sweep)
    with pytest.raises(InvalidInput) as refused:
        services.version_register(
            actor=engineer, model=make_model(), version="v1", artefact_upload=upload_id
        )
    assert refused.value.code == "upload_not_found"
    assert "expired meanwhile" in refused.value.message


def test_uploads_above_the_size_cap_are_413_and_leave_nothing(api_for, engineer, store, settings):
    settings.PEDIGREE_MAX_UPLOAD_BYTES = 50
    folder = build_full_model(store.parent / "big")
    response = post_files(api_for(engineer), folder_files(folder))
    assert response.status_code == 413
    error = error_of(response)
    assert "PEDIGREE_MAX_UPLOAD_BYTES" in error["message"]
    assert not ArtefactUpload.objects.exists()
    assert nothing_stored(store)
