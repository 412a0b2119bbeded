"""The manifest kept per artefact is bounded (`PEDIGREE_MAX_MANIFEST_BYTES`): legal safetensors
files with very many tensors or large metadata are summarised by count and hash, and a file list
too long to keep is refused with a 400, storing nothing."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from safetensors.torch import save_file

from pedigree_client.artefacts import inspect_artefact
from registry.models import ArtefactUpload, ModelVersion
from tests.registry.test_tenancy import upload

pytestmark = pytest.mark.django_db

CAP = 64 * 1024


@pytest.fixture
def area(settings, tmp_path) -> Path:
    store = tmp_path / "store"
    (store / "teams" / "acme").mkdir(parents=True)
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    settings.PEDIGREE_MAX_MANIFEST_BYTES = CAP
    return store / "teams" / "acme"


def many_tensors(folder: Path, count: int = 3000) -> Path:
    """A real safetensors file of `count` one-element tensors with long names."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"encoder.layer.{i:05d}.attention.self.query.lora_A.default.weight": torch.zeros(1)
        for i in range(count)
    }
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def size_of(manifest: dict) -> int:
    return len(json.dumps(manifest, sort_keys=True, ensure_ascii=False).encode())


def test_many_tensors_are_summarised_in_what_inspect_answers(api_for, engineer, area):
    folder = many_tensors(area / "m")
    full = inspect_artefact(folder)
    assert size_of(full.to_dict()) > CAP  # what was stored whole before

    response = api_for(engineer).post(
        "/api/v1/artefacts/inspect/", {"path": "teams/acme/m"}, format="json"
    )

    assert response.status_code == 200, response.json()
    manifest = response.json()["manifest"]
    assert size_of(manifest) <= CAP
    assert manifest["digest"] == full.digest
    assert response.json()["parameter_count"] == 3000
    summary = manifest["files"][0]["safetensors"]
    assert summary["tensor_count"] == 3000 and summary["shapes"] == {}
    assert summary["shapes_truncated"] is True
    listed = full.files[0].safetensors.to_dict()["shapes"]
    encoded = json.dumps(listed, sort_keys=True, ensure_ascii=False).encode()
    assert hashlib.sha256(encoded).hexdigest() in summary["shapes_omitted"]
    assert f"{len(listed)} shapes of 3000 tensors" in summary["shapes_omitted"]


def test_registration_and_upload_store_the_bounded_manifest(
    api_for, engineer, make_model, area, tmp_path
):
    make_model("acme/many")
    api = api_for(engineer)
    many_tensors(area / "m")
    response = api.post(
        "/api/v1/registrations/",
        {
            "model": "acme/many",
            "version": "v1",
            "licence_declared": "MIT",
            "artefact_path": "teams/acme/m",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    version = ModelVersion.objects.get()
    assert size_of(version.artefact_manifest) <= CAP
    assert version.parameter_count == 3000

    uploaded = upload(api, many_tensors(tmp_path / "elsewhere"))
    assert size_of(ArtefactUpload.objects.get(pk=uploaded["id"]).manifest) <= CAP
    assert uploaded["parameter_count"] == 3000


def test_large_metadata_of_many_files_is_summarised_with_its_hash(api_for, engineer, area):
    folder = area / "pipeline"
    folder.mkdir()
    metadata = {"notes": "x" * 40_000}
    for name in ("text_encoder", "unet", "vae"):
        save_file({"w": torch.zeros(2)}, str(folder / f"{name}.safetensors"), metadata=metadata)

    response = api_for(engineer).post(
        "/api/v1/artefacts/inspect/", {"path": "teams/acme/pipeline"}, format="json"
    )

    assert response.status_code == 200, response.json()
    manifest = response.json()["manifest"]
    assert size_of(manifest) <= CAP
    block = json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode()
    for file in manifest["files"]:
        (note,) = file["safetensors"]["metadata"].values()
        assert hashlib.sha256(block).hexdigest() in note


def test_a_file_list_above_the_cap_is_refused_storing_nothing(api_for, engineer, area, tmp_path):
    folder = many_tensors(tmp_path / "crowd", count=1)
    deep = folder / ("d" * 200) / ("e" * 200) / ("f" * 200)
    deep.mkdir(parents=True)
    for i in range(95):
        (deep / f"{i:02d}{'n' * 90}.txt").write_text("x")  # 95 paths of ~700 characters
    api = api_for(engineer)

    response = api.post(
        "/api/v1/artefacts/uploads/",
        {
            path.relative_to(folder).as_posix(): SimpleUploadedFile(path.name, path.read_bytes())
            for path in folder.rglob("*")
            if path.is_file()
        },
        format="multipart",
    )

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "manifest_too_large", error
    assert "PEDIGREE_MAX_MANIFEST_BYTES" in error["message"]
    assert not ArtefactUpload.objects.exists()
    assert not any((area.parents[1] / "uploads").rglob("*.txt"))
