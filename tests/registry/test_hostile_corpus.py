"""Every row of the hostile corpus (`tests/registry/hostile_corpus.py`) through every entry point
that takes it: a clear 4xx in the envelope (or a clear `pedigree` error, exit 2, no traceback),
with a code the row names, nothing echoed from files the caller cannot see, and nothing
changed."""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from huggingface_hub import constants
from rest_framework.authtoken.models import Token

from pedigree_client.artefacts import inspect_artefact
from pedigree_client.cli import main
from registry.models import (
    ArtefactInspection,
    ArtefactUpload,
    AuditEntry,
    Dataset,
    ModelVersion,
    RegisteredModel,
)
from tests.registry.hostile_corpus import (
    ARTEFACTS,
    CARD,
    OVERSIZED_METADATA,
    PATHS,
    SECRET,
    UPLOAD_NAMES,
    HostileArtefact,
    HostilePath,
    build_outside,
)
from tests.registry.test_artefacts import build_full_model, save_small_model, write

REVISION = "ab" * 20
MODEL = "acme/hostile"
UPSTREAM = "acme/hostile-upstream"  # imported as an upstream model, so not MODEL's name


@dataclass
class World:
    store: Path
    area: Path
    outside: Path
    secret_digest: str  # of another team's model, never to be shown

    def place(self, artefact: HostileArtefact) -> str:
        """Build the artefact in acme's area; its path as a client names it."""
        artefact.build(self.area / artefact.id, self.outside)
        return f"teams/acme/{artefact.id}"

    def path(self, hostile: HostilePath) -> str:
        return hostile.raw.format(outside=self.outside, area=self.area)


@pytest.fixture
def world(settings, tmp_path, monkeypatch, make_model) -> World:
    store = tmp_path / "store"
    area = store / "teams" / "acme"
    area.mkdir(parents=True)
    secret = build_full_model(store / "teams" / "globex" / "secret-model")
    (store / "uploads").mkdir()
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    hf_cache = tmp_path / "hf-cache"
    hf_cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache))
    make_model(MODEL)
    return World(
        store=store,
        area=area,
        outside=build_outside(tmp_path / "outside"),
        secret_digest=inspect_artefact(secret).digest,
    )


def state(world: World) -> dict:
    """What a refused request must leave as it was."""
    return {
        "versions": ModelVersion.objects.count(),
        "models": RegisteredModel.objects.count(),
        "datasets": Dataset.objects.count(),
        "uploads": ArtefactUpload.objects.count(),
        "audit": AuditEntry.objects.exclude(action="artefact_inspection.create").count(),
        "stored files": sorted(str(p) for p in (world.store / "uploads").rglob("*")),
    }


# --- the API entry points ----------------------------------------------------------------------


def via_upload(api, world: World, folder: Path, capture) -> object:
    files = {
        path.relative_to(folder).as_posix(): SimpleUploadedFile(path.name, path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    return api.post("/api/v1/artefacts/uploads/", files, format="multipart")


def via_register(api, world: World, path: str, capture) -> object:
    body = {"model": MODEL, "version": "v1", "licence_declared": "MIT", "artefact_path": path}
    return api.post("/api/v1/registrations/", body, format="json")


def via_inspect(api, world: World, path: str, capture) -> object:
    return api.post("/api/v1/artefacts/inspect/", {"path": path}, format="json")


def via_import(api, world: World, path: str, capture) -> object:
    body = {"repo_id": UPSTREAM, "revision": REVISION, "snapshot_dir": path, "team": "acme"}
    return api.post("/api/v1/imports/hf/", body, format="json")


def via_inspection_task(api, world: World, path: str, capture) -> object:
    """Inspected by a task (every artefact is 'large'): refused before the task is created, or
    by the task, whose stored error is what the client reads."""
    with capture(execute=True):
        response = api.post("/api/v1/artefacts/inspect/", {"path": path}, format="json")
    if response.status_code != 202:
        return response
    inspection = api.get(response.json()["url"]).json()
    assert inspection["status"] == "failed", inspection
    assert inspection["manifest"] == {}
    return inspection["error"]


SERVER_PATH_ENTRY_POINTS: dict[str, Callable] = {
    "register": via_register,
    "inspect": via_inspect,
    "inspection-task": via_inspection_task,
    "import": via_import,
}


def refusal(answer) -> tuple[int, str, str]:
    """(status, code, text) of an error answer, or of an error a task stored."""
    if isinstance(answer, dict):
        return answer["status"], answer["code"], json.dumps(answer)
    text = answer.content.decode()
    body = json.loads(text)
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == answer.status_code
    return answer.status_code, body["error"]["code"], text


def assert_refused(answer, codes: frozenset[str], world: World) -> None:
    status, code, text = refusal(answer)
    assert 400 <= status < 500 and status != 413, (status, text)
    assert code in codes, text
    assert SECRET.decode() not in text and world.secret_digest not in text


@pytest.fixture
def inspection_task(settings):
    settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES = 0


@pytest.mark.django_db
@pytest.mark.parametrize("entry", [*SERVER_PATH_ENTRY_POINTS, "upload"])
@pytest.mark.parametrize("artefact", ARTEFACTS, ids=lambda artefact: artefact.id)
def test_hostile_artefacts_through_the_api(
    api_for, engineer, world, settings, django_capture_on_commit_callbacks, entry, artefact
):
    if entry == "upload" and not artefact.local:
        pytest.skip("an upload sends bytes: a symlink on the server cannot be uploaded")
    if entry == "inspection-task":
        settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES = 0
    path = world.place(artefact)
    before = state(world)
    via = via_upload if entry == "upload" else SERVER_PATH_ENTRY_POINTS[entry]
    target = world.area / artefact.id if entry == "upload" else path

    answer = via(api_for(engineer), world, target, django_capture_on_commit_callbacks)

    assert_refused(answer, artefact.codes, world)
    assert state(world) == before


@pytest.mark.django_db
@pytest.mark.parametrize("entry", SERVER_PATH_ENTRY_POINTS)
@pytest.mark.parametrize("hostile", PATHS, ids=lambda hostile: hostile.id)
def test_hostile_paths_through_the_api(
    api_for, engineer, world, settings, django_capture_on_commit_callbacks, entry, hostile
):
    if entry == "inspection-task":
        settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES = 0
    before = state(world)

    answer = SERVER_PATH_ENTRY_POINTS[entry](
        api_for(engineer), world, world.path(hostile), django_capture_on_commit_callbacks
    )

    assert_refused(answer, hostile.codes, world)
    assert state(world) == before
    assert not ArtefactInspection.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "upload_name"), UPLOAD_NAMES, ids=[n for n, _ in UPLOAD_NAMES])
def test_hostile_upload_names(api_for, engineer, world, name, upload_name):
    before = state(world)
    files = {
        upload_name: SimpleUploadedFile("model.safetensors", b"x"),
        "config.json": SimpleUploadedFile("config.json", b"{}"),
    }
    answer = api_for(engineer).post("/api/v1/artefacts/uploads/", files, format="multipart")
    assert_refused(answer, frozenset({"invalid_file_name", "pickle_refused"}), world)
    assert state(world) == before


# --- the `pedigree` CLI, against a live server --------------------------------------------------


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def assert_cli_refused(code: int, err: str, *, from_server: bool, row: str) -> None:
    assert code == 2, (row, err)
    assert "pedigree: error: " in err, (row, err)
    assert "Traceback" not in err and SECRET.decode() not in err, (row, err)
    if from_server:
        assert re.search(r"\(HTTP 4\d\d\)", err), (row, err)


CLI_SERVER_PATH_COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "register": lambda path: [
        "register",
        "--server-path",
        path,
        "--model",
        MODEL,
        "--version",
        "v1",
        "--licence",
        "MIT",
    ],
    "inspect": lambda path: ["artefacts", "inspect", path, "--on-server"],
    "import-hf": lambda path: [
        "import-hf",
        UPSTREAM,
        "--revision",
        REVISION,
        "--snapshot-dir",
        path,
        "--team",
        "acme",
    ],
}


@pytest.fixture
def cli_base(live_server, engineer) -> list[str]:
    return ["--url", live_server.url, "--token", Token.objects.create(user=engineer).key]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", CLI_SERVER_PATH_COMMANDS)
def test_hostile_artefacts_and_paths_through_the_cli(cli_base, world, capsys, command):
    before = state(world)
    args = CLI_SERVER_PATH_COMMANDS[command]
    for artefact in ARTEFACTS:
        code, err = run_cli([*cli_base, *args(world.place(artefact))], capsys)
        assert_cli_refused(code, err, from_server=True, row=artefact.id)
    for hostile in PATHS:
        if "\x00" in hostile.raw:
            continue  # a command line cannot hold a NUL byte
        code, err = run_cli([*cli_base, *args(world.path(hostile))], capsys)
        assert_cli_refused(code, err, from_server=True, row=hostile.id)
    assert state(world) == before


@pytest.mark.django_db(transaction=True)
def test_hostile_artefacts_through_cli_uploads(cli_base, world, tmp_path, capsys):
    """The client inspects before sending: each is refused on this machine, nothing sent."""
    before = state(world)
    for artefact in ARTEFACTS:
        folder = tmp_path / "local" / artefact.id
        artefact.build(folder, world.outside)
        code, err = run_cli([*cli_base, "artefacts", "upload", str(folder)], capsys)
        assert_cli_refused(code, err, from_server=False, row=artefact.id)
        code, err = run_cli(
            [*cli_base, "register", str(folder), "--model", MODEL, "--version", "v1"], capsys
        )
        assert_cli_refused(code, err, from_server=False, row=artefact.id)
    assert state(world) == before


# --- oversized metadata: legal, so accepted, but never stored whole -----------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("entry", ["upload", "register", "inspect", "inspection-task", "import"])
def test_oversized_metadata_is_kept_bounded_through_every_entry_point(
    api_for, engineer, world, settings, django_capture_on_commit_callbacks, entry
):
    folder = world.area / "metadata"
    save_small_model(folder / "model.safetensors", metadata=OVERSIZED_METADATA)
    write(folder / "README.md", CARD)
    api = api_for(engineer)
    if entry == "inspection-task":
        settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES = 0
    if entry == "upload":
        response = via_upload(api, world, folder, django_capture_on_commit_callbacks)
        assert response.status_code == 201, response.content
        manifest = ArtefactUpload.objects.get().manifest
    elif entry in ("register", "import"):
        via = via_register if entry == "register" else via_import
        response = via(api, world, "teams/acme/metadata", django_capture_on_commit_callbacks)
        assert response.status_code == 201, response.content
        manifest = ModelVersion.objects.get(artefact_digest=inspect_artefact(folder).digest)
        manifest = manifest.artefact_manifest
    else:
        with django_capture_on_commit_callbacks(execute=True):
            response = via_inspect(api, world, "teams/acme/metadata", None)
        assert response.status_code in (200, 202), response.content
        manifest = (
            response.json()["manifest"]
            if response.status_code == 200
            else ArtefactInspection.objects.get().manifest
        )

    (weights,) = (file for file in manifest["files"] if file["safetensors"])
    kept = weights["safetensors"]["metadata"]
    assert len(json.dumps(kept)) <= 64 * 1024
    assert "SHA-256" in kept["__pedigree_omitted__"]
