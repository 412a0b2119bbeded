"""Registering versions from their files (`version_register`) and inspecting paths via the API."""

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from pedigree_client.artefacts import inspect_artefact, weight_parameters
from registry import services, storage
from registry.errors import Conflict, InvalidInput, PermissionRefused
from registry.models import ArtefactUpload, AuditEntry, ModelVersion
from registry.services import artefacts
from tests.conftest import digest
from tests.registry.test_artefacts import (
    MALFORMED,
    PEFT_ADAPTER_CONFIG,
    build_adapter,
    build_full_model,
    build_sharded,
    save_small_model,
    write,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def roots(settings, tmp_path) -> tuple[Path, Path]:
    """Team acme's areas of two artefact roots (`<root>/teams/acme`), where its engineer may
    name files."""
    store, shared = tmp_path / "store", tmp_path / "shared"
    settings.ARTEFACT_ROOTS = [store, shared]
    settings.ARTEFACT_STORE = store
    areas = store / "teams" / "acme", shared / "teams" / "acme"
    for area in areas:
        area.mkdir(parents=True)
    return areas


@pytest.fixture
def model(make_model):
    return make_model("acme/support-intent")


def refused(error_type, **kwargs):
    with pytest.raises(error_type) as caught:
        services.version_register(**kwargs)
    return caught.value


def test_full_model_from_a_path(engineer, model, roots):
    folder = build_full_model(roots[1] / "runs" / "v1")
    expected = inspect_artefact(folder)
    seen: list[tuple[str, int, int]] = []

    version = services.version_register(
        actor=engineer,
        model=model,
        version="v1",
        artefact_path=str(folder),
        progress=lambda *call: seen.append(call),
        risk_tier="high",
        licence_declared="Apache-2.0",
    )

    version.refresh_from_db()
    assert version.artefact_digest == expected.digest
    assert version.artefact_size == expected.total_size
    assert version.parameter_count == 16
    assert version.artefact_manifest == expected.to_dict()
    assert version.artefact_uri == folder.as_uri()
    assert version.risk_tier == "high"
    assert seen[-1][1:] == (expected.total_size, expected.total_size)
    assert AuditEntry.objects.filter(action="version.create", object_id=str(version.pk)).exists()


def test_relative_path_is_taken_from_the_first_root(engineer, model, roots):
    folder = build_full_model(roots[0] / "team" / "model")
    version = services.version_register(
        actor=engineer, model=model, version="v1", artefact_path="teams/acme/team/model"
    )
    assert version.artefact_digest == inspect_artefact(folder).digest


def test_sharded_checkpoint(engineer, model, roots):
    build_sharded(roots[1] / "sharded")

    version = services.version_register(
        actor=engineer, model=model, version="v1", artefact_path=str(roots[1] / "sharded")
    )

    assert version.artefact_manifest["format"] == "sharded"
    assert version.parameter_count == 32
    shards = [f for f in version.artefact_manifest["files"] if f["kind"] == "weights"]
    assert len(shards) == 2 and all(len(f["sha256"]) == 64 for f in shards)


def test_adapter_names_its_base_model(engineer, model, roots):
    build_adapter(roots[1] / "adapter", PEFT_ADAPTER_CONFIG)

    version = services.version_register(
        actor=engineer, model=model, version="lora-1", artefact_path=str(roots[1] / "adapter")
    )

    manifest = version.artefact_manifest
    assert manifest["format"] == "adapter"
    assert (
        manifest["adapter"]["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert manifest["adapter"]["r"] == 8 and manifest["adapter"]["peft_type"] == "LORA"
    assert version.parameter_count == 4 * 8 * 384


def test_buffers_are_not_counted_as_parameters():
    assert weight_parameters({"F32": 22_713_216, "I64": 512}) == 22_713_216
    assert weight_parameters({"BF16": 10, "I8": 5, "I32": 2, "BOOL": 3, "U64": 1}) == 17


def test_digest_only_records_external_weights(engineer, model, roots):
    version = services.version_register(
        actor=engineer, model=model, version="v1", artefact_digest=digest("external")
    )
    assert version.artefact_manifest == {}
    assert version.artefact_uri == "" and version.parameter_count is None


@pytest.mark.parametrize(
    "stated",
    [
        {"artefact_uri": "s3://bucket/weights"},
        {"parameter_count": 7_000_000_000},
        {"artefact_size": 1},
        {"hub_repo_id": "sentence-transformers/all-MiniLM-L6-v2", "hub_revision": "a" * 40},
    ],
)
def test_server_owned_fields_are_refused_even_for_external_weights(engineer, model, stated):
    error = refused(
        InvalidInput,
        actor=engineer,
        model=model,
        version="v1",
        artefact_digest=digest("external"),
        **stated,
    )
    assert set(stated) <= set(error.fields)
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    "sources",
    [
        {},
        {"artefact_path": "a", "artefact_digest": digest(1)},
        {"artefact_path": "a", "artefact_upload": "b"},
    ],
)
def test_exactly_one_artefact_source(engineer, model, roots, sources):
    error = refused(InvalidInput, actor=engineer, model=model, version="v1", **sources)
    assert "exactly one artefact source" in error.message


def test_inspected_fields_cannot_be_stated(engineer, model, roots):
    build_full_model(roots[1] / "m")
    error = refused(
        InvalidInput,
        actor=engineer,
        model=model,
        version="v1",
        artefact_path=str(roots[1] / "m"),
        parameter_count=1,
    )
    assert error.fields == {"parameter_count": ["Set by the server."]}
    error = refused(
        InvalidInput,
        actor=engineer,
        model=model,
        version="v1",
        artefact_digest=digest(1),
        artefact_manifest={"files": []},
    )
    assert "artefact_manifest" in error.fields


def test_permission_and_label_are_checked_before_hashing(
    engineer, outsider, model, make_version, roots, monkeypatch
):
    build_full_model(roots[1] / "m")
    make_version(model, version="v1")

    def no_hashing(*args, **kwargs):
        raise AssertionError("inspected before the cheap checks")

    monkeypatch.setattr(artefacts, "inspect_artefact", no_hashing)
    path = str(roots[1] / "m")
    refused(PermissionRefused, actor=outsider, model=model, version="v2", artefact_path=path)
    error = refused(Conflict, actor=engineer, model=model, version="v1", artefact_path=path)
    assert "already has a version 'v1'" in error.message


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("../outside", "parent_traversal"),
        ("%2e%2e/outside", "parent_traversal"),
        ("%252e%252e%252foutside", "parent_traversal"),
        ("{tmp}/outside", "outside_roots"),
        ("/etc", "outside_roots"),
        ("teams/acme/escape-link", "outside_roots"),
        ("teams/acme/absent", "missing_file"),
        ("", None),
    ],
)
def test_paths_outside_the_roots_are_refused(engineer, model, roots, tmp_path, raw, code):
    build_full_model(tmp_path / "outside")
    os.symlink(tmp_path / "outside", roots[0] / "escape-link")

    if code is None:
        error = refused(InvalidInput, actor=engineer, model=model, version="v1", artefact_path=raw)
        assert "exactly one artefact source" in error.message
        return
    error = refused(
        InvalidInput,
        actor=engineer,
        model=model,
        version="v1",
        artefact_path=raw.format(tmp=tmp_path),
    )
    assert error.code == code
    assert error.fields["artefact_path"] == [error.message]
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(("code", "content"), MALFORMED[:6] + MALFORMED[-3:])
def test_malformed_or_pickle_weights_register_nothing(engineer, model, roots, code, content):
    write(roots[1] / "bad" / "model.safetensors", content)
    error = refused(
        InvalidInput, actor=engineer, model=model, version="v1", artefact_path=str(roots[1] / "bad")
    )
    assert error.code == code
    assert not ModelVersion.objects.exists()


def test_pickle_file_is_refused_with_the_fix(engineer, model, roots):
    folder = build_full_model(roots[1] / "m")
    write(folder / "pytorch_model.bin", b"\x80\x04.")
    error = refused(
        InvalidInput, actor=engineer, model=model, version="v1", artefact_path=str(folder)
    )
    assert error.code == "pickle_refused"
    assert "safetensors.torch.save_file" in error.message


# --- from an upload ----------------------------------------------------------------------------


def upload_of(api, folder: Path) -> str:
    files = {
        path.relative_to(folder).as_posix(): SimpleUploadedFile(path.name, path.read_bytes())
        for path in folder.rglob("*")
        if path.is_file()
    }
    response = api.post("/api/v1/artefacts/uploads/", files, format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_version_from_an_upload_consumes_it(api_for, engineer, model, roots, tmp_path):
    folder = build_full_model(tmp_path / "m")
    upload_id = upload_of(api_for(engineer), folder)

    version = services.version_register(
        actor=engineer, model=model, version="v1", artefact_upload=upload_id
    )

    upload = ArtefactUpload.objects.get(pk=upload_id)
    assert upload.consumed_by == version
    assert version.artefact_digest == upload.digest == inspect_artefact(folder).digest
    assert version.artefact_uri == storage.local_path(upload.store_path).as_uri()
    assert version.parameter_count == 16
    assert AuditEntry.objects.filter(action="artefact_upload.consume").count() == 1
    assert api_for(engineer).get(f"/api/v1/artefacts/uploads/{upload_id}/").json()[
        "consumed_by"
    ] == str(version)

    error = refused(Conflict, actor=engineer, model=model, version="v2", artefact_upload=upload_id)
    assert error.code == "upload_consumed"
    assert not ModelVersion.objects.filter(version="v2").exists()


def test_someone_elses_or_unknown_upload_is_refused(
    api_for, engineer, outsider, make_model, other_team, roots, tmp_path
):
    upload_id = upload_of(api_for(engineer), build_full_model(tmp_path / "m"))
    theirs = make_model("globex/model", actor=outsider, owner=other_team)

    for ref in (upload_id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        error = refused(
            InvalidInput, actor=outsider, model=theirs, version="v1", artefact_upload=ref
        )
        assert error.code == "upload_not_found"
    assert ArtefactUpload.objects.get(pk=upload_id).consumed_by is None


# --- inspecting a path through the API ---------------------------------------------------------


def test_inspect_endpoint_writes_nothing(api_for, engineer, roots):
    folder = build_full_model(roots[1] / "m")
    audit_before = AuditEntry.objects.count()

    response = api_for(engineer).post(
        "/api/v1/artefacts/inspect/", {"path": str(folder)}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["manifest"]["digest"] == inspect_artefact(folder).digest
    assert body["parameter_count"] == 16
    assert AuditEntry.objects.count() == audit_before
    assert not ModelVersion.objects.exists() and not ArtefactUpload.objects.exists()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("../x", "parent_traversal"),
        ("..%2fx", "parent_traversal"),
        ("/etc/passwd", "outside_roots"),
        ("teams/acme/nothing-here", "missing_file"),
    ],
)
def test_inspect_endpoint_refuses_paths_outside_the_roots(api_for, engineer, roots, raw, code):
    response = api_for(engineer).post("/api/v1/artefacts/inspect/", {"path": raw}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and error["fields"]["artefact_path"]


def test_inspect_endpoint_needs_a_token_and_known_fields(api_for, engineer, roots):
    save_small_model(roots[0] / "model.safetensors")
    assert (
        api_for(None)
        .post("/api/v1/artefacts/inspect/", {"path": "teams/acme/model.safetensors"}, format="json")
        .status_code
        == 401
    )
    response = api_for(engineer).post(
        "/api/v1/artefacts/inspect/", {"path": "model.safetensors", "pth": 1}, format="json"
    )
    assert response.status_code == 400 and "pth" in response.json()["error"]["fields"]


# --- the admin ---------------------------------------------------------------------------------


def test_admin_shows_manifests_and_uploads_read_only(
    client, api_for, engineer, compliance_user, model, roots, tmp_path
):
    folder = build_full_model(tmp_path / "m")
    upload_id = upload_of(api_for(engineer), folder)
    version = services.version_register(
        actor=engineer, model=model, version="v1", artefact_upload=upload_id
    )
    compliance_user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="registry", codename__startswith="view_")
    )
    client.force_login(compliance_user)

    page = client.get(f"/admin/registry/modelversion/{version.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<td>1_Pooling/config.json</td>" in html
    assert f"<code>{version.artefact_digest}</code>" in html
    assert "16 parameters (BF16 4, F32 12)" in html

    page = client.get(f"/admin/registry/artefactupload/{upload_id}/change/")
    assert page.status_code == 200 and "<td>model.safetensors</td>" in page.content.decode()
    assert client.get("/admin/registry/artefactupload/").status_code == 200
    assert client.get("/admin/registry/artefactupload/add/").status_code == 403
