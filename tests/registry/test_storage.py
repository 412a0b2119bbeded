"""Uploads are written to, and read back from, the `artefacts` storage (`registry.storage`),
whether it is a folder on this machine or a remote store such as S3."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from pedigree_client.artefacts import inspect_artefact
from registry import services, storage
from registry.models import ArtefactUpload
from tests.registry.test_artefacts import build_full_model

UPLOADS = "/api/v1/artefacts/uploads/"

pytestmark = pytest.mark.django_db


def post_folder(api, folder: Path, **extra: bytes):
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }
    files.update(extra)
    parts = {name: SimpleUploadedFile(Path(name).name, data) for name, data in files.items()}
    return api.post(UPLOADS, parts, format="multipart")


@pytest.fixture
def roots(settings, tmp_path) -> Path:
    store = tmp_path / "roots"
    store.mkdir()
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    return store


@pytest.fixture
def staging(settings, tmp_path) -> Path:
    """Where uploads for a remote storage are received and its files copied to be read."""
    folder = tmp_path / "staging"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


@pytest.fixture
def elsewhere(settings, tmp_path, roots) -> Path:
    """The artefacts storage: a folder outside the artefact roots."""
    location = tmp_path / "shared-volume"
    settings.STORAGES = {
        **settings.STORAGES,
        "artefacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


@pytest.fixture
def remote(settings, roots, staging):
    """An artefacts storage with no local path, as S3 is."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artefacts": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    return storages["artefacts"]


def test_default_storage_is_the_first_artefact_root(api_for, engineer, roots, tmp_path):
    folder = build_full_model(tmp_path / "model")

    body = post_folder(api_for(engineer), folder).json()

    assert (roots / "uploads" / body["id"] / "1_Pooling" / "config.json").read_bytes() == b"{}"


def test_uploads_land_in_the_configured_storage(
    api_for, engineer, make_model, roots, elsewhere, tmp_path
):
    folder = build_full_model(tmp_path / "model")

    response = post_folder(api_for(engineer), folder)

    assert response.status_code == 201, response.json()
    upload_id = response.json()["id"]
    stored = elsewhere / "uploads" / upload_id
    assert inspect_artefact(stored).digest == inspect_artefact(folder).digest
    assert not (roots / "uploads").exists()
    version = services.version_register(
        actor=engineer, model=make_model(), version="v1", artefact_upload=upload_id
    )
    assert version.artefact_uri == stored.as_uri()


def test_remote_storage_receives_inspected_files_and_keeps_no_local_copy(
    api_for, engineer, make_model, remote, staging, roots, tmp_path
):
    folder = build_full_model(tmp_path / "model")
    expected = inspect_artefact(folder)

    response = post_folder(api_for(engineer), folder)

    assert response.status_code == 201, response.json()
    upload_id = response.json()["id"]
    for file in expected.files:
        with remote.open(f"uploads/{upload_id}/{file.path}") as stored:
            assert stored.read() == (folder / file.path).read_bytes()
    assert list(staging.iterdir()) == []
    assert not (roots / "uploads").exists()
    version = services.version_register(
        actor=engineer, model=make_model(), version="v1", artefact_upload=upload_id
    )
    assert version.artefact_uri == f"storage://artefacts/uploads/{upload_id}"
    assert storage.local_path(ArtefactUpload.objects.get(pk=upload_id).store_path) is None


def test_refused_upload_leaves_nothing_in_a_remote_storage(
    api_for, engineer, remote, staging, tmp_path
):
    folder = build_full_model(tmp_path / "model")

    response = post_folder(api_for(engineer), folder, **{"model.safetensors": b"\x07\x00\x00"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_small"
    assert not ArtefactUpload.objects.exists()
    assert remote.listdir("") == ([], [])
    assert list(staging.iterdir()) == []


def test_the_sweep_deletes_expired_uploads_from_a_remote_storage(
    api_for, engineer, remote, staging, tmp_path
):
    def files_under(name: str) -> list[str]:
        folders, files = remote.listdir(name)
        return files + [f for folder in folders for f in files_under(f"{name}/{folder}")]

    upload_id = post_folder(api_for(engineer), build_full_model(tmp_path / "model")).json()["id"]
    assert "model.safetensors" in files_under(f"uploads/{upload_id}")
    ArtefactUpload.objects.filter(pk=upload_id).update(
        created_at=timezone.now() - timedelta(days=2)
    )

    assert [str(swept) for swept in services.uploads_sweep()] == [upload_id]

    assert not ArtefactUpload.objects.exists()
    assert files_under("uploads") == []  # an in-memory storage keeps empty folders; S3 has none
