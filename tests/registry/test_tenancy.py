"""Tenancy of server-side files: each team names paths only inside its own area of the artefact
roots (`<root>/teams/<team>/`), uploads only by id and only its own; anything else is not found,
with nothing learnt about it. Compliance staff inspect anywhere."""

import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from pedigree_client.artefacts import inspect_artefact
from registry import services
from registry.errors import NotFound
from registry.models import ModelVersion
from tests.registry.test_artefacts import build_full_model

INSPECT = "/api/v1/artefacts/inspect/"

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
def globex_model(store) -> Path:
    """Another team's private weights, in its own area."""
    return build_full_model(store / "teams" / "globex" / "secret-model")


def upload(api, folder: Path) -> dict:
    files = {
        path.relative_to(folder).as_posix(): SimpleUploadedFile(path.name, path.read_bytes())
        for path in folder.rglob("*")
        if path.is_file()
    }
    response = api.post("/api/v1/artefacts/uploads/", files, format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()


def inspect(api, path: str):
    return api.post(INSPECT, {"path": path}, format="json")


def test_engineer_inspects_own_area(api_for, engineer, store):
    folder = build_full_model(store / "teams" / "acme" / "m")
    response = inspect(api_for(engineer), "teams/acme/m")
    assert response.status_code == 200, response.json()
    assert response.json()["manifest"]["digest"] == inspect_artefact(folder).digest


@pytest.mark.parametrize(
    "path",
    [
        "teams/globex/secret-model",
        "teams/globex/secret-model/model.safetensors",
        "teams/globex",
        "teams",
        "uploads",
        ".",
        "{store}/teams/globex/secret-model",
        "teams/acme%2F..%2Fglobex/secret-model",
    ],
)
def test_other_teams_files_and_the_uploads_folder_are_not_found(
    api_for, engineer, outsider, store, globex_model, path
):
    theirs = upload(api_for(outsider), globex_model)
    response = inspect(api_for(engineer), path.format(store=store))
    body = response.json()
    # The traversal form is refused as such; every other form is simply not found.
    assert response.status_code == (400 if "%2F.." in path else 404), body
    # Whatever is said beyond the path the caller gave names none of the files there.
    text = response.content.decode().replace(path.format(store=store), "")
    assert theirs["digest"] not in text and theirs["id"] not in text
    assert "model.safetensors" not in text and "config.json" not in text
    assert "manifest" not in body


def test_existing_and_missing_paths_of_another_team_answer_alike(
    api_for, engineer, store, globex_model
):
    """No existence oracle: the answer for a real folder of another team and for nothing at all
    differ only by the path echoed."""
    api = api_for(engineer)
    real = inspect(api, "teams/globex/secret-model").json()["error"]
    absent = inspect(api, "teams/globex/nothing-here").json()["error"]
    assert real["status"] == absent["status"] == 404
    assert real["code"] == absent["code"] == "not_found"
    assert real["message"].replace("secret-model", "X") == absent["message"].replace(
        "nothing-here", "X"
    )


def test_symlinks_from_own_area_into_another_team_are_not_followed(
    api_for, engineer, store, globex_model
):
    area = store / "teams" / "acme"
    os.symlink(globex_model, area / "linked-folder")
    folder = build_full_model(area / "mixed")
    (folder / "model.safetensors").unlink()
    os.symlink(globex_model / "model.safetensors", folder / "model.safetensors")
    api = api_for(engineer)

    assert inspect(api, "teams/acme/linked-folder").status_code == 404
    response = inspect(api, "teams/acme/mixed")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "outside_roots"


def test_registering_another_teams_files_is_not_found_and_writes_nothing(
    engineer, make_model, store, globex_model
):
    model = make_model("acme/squatter")
    with pytest.raises(NotFound):
        services.version_register(
            actor=engineer,
            model=model,
            version="v1",
            artefact_path="teams/globex/secret-model",
            licence_declared="MIT",
        )
    assert not ModelVersion.objects.exists()


def test_another_users_upload_cannot_be_registered_by_path_or_id(
    api_for, engineer, outsider, make_model, store, globex_model
):
    theirs = upload(api_for(outsider), globex_model)
    api = api_for(engineer)
    make_model("acme/squatter")
    for source in (
        {"artefact_path": f"uploads/{theirs['id']}"},
        {"artefact_upload": theirs["id"]},
    ):
        response = api.post(
            "/api/v1/registrations/",
            {
                "model": "acme/squatter",
                "version": "v1",
                "licence_declared": "MIT",
                **source,
            },
            format="json",
        )
        assert response.status_code in (400, 404), response.json()
        assert theirs["digest"] not in response.content.decode()
    assert not ModelVersion.objects.exists()


def test_compliance_inspects_anywhere(api_for, compliance_user, store, globex_model):
    response = inspect(api_for(compliance_user), "teams/globex/secret-model")
    assert response.status_code == 200
    assert response.json()["manifest"]["digest"] == inspect_artefact(globex_model).digest


def test_a_member_of_two_teams_reads_both_areas(make_user, team, other_team, store, globex_model):
    both = make_user(teams=[team, other_team])
    _, manifest = services.artefact_inspect(actor=both, path="teams/globex/secret-model")
    assert manifest["digest"] == inspect_artefact(globex_model).digest


def test_hub_snapshot_of_another_team_is_not_found(engineer, team, store, globex_model):
    with pytest.raises(NotFound):
        services.upstream_import(
            actor=engineer,
            team=team,
            repo_id="globex/secret-model",
            revision="0" * 40,
            snapshot_dir="teams/globex/secret-model",
        )
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    "link", ["README.md", ".cache/huggingface/download/model.safetensors.metadata"]
)
def test_files_symlinked_out_of_a_snapshot_are_never_read(api_for, engineer, store, tmp_path, link):
    """A README.md (or Hub download metadata) linking out of the folder is refused before it is
    opened, so its content is never echoed in an error."""
    secret = tmp_path / "secret.txt"
    secret.write_text("---\nlicense: [TOP-SECRET-CONTENT\n---\n")
    folder = build_full_model(store / "teams" / "acme" / "snap")
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    target = folder / link
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    os.symlink(secret, target)

    response = api_for(engineer).post(
        "/api/v1/imports/hf/",
        {
            "repo_id": "acme/snap",
            "revision": "a" * 40,
            "snapshot_dir": "teams/acme/snap",
            "team": "acme",
        },
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "outside_roots"
    assert "TOP-SECRET" not in response.content.decode()
    assert not ModelVersion.objects.exists()
