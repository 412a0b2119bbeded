"""GGUF-only Hub repositories (llama.cpp quantizations such as bartowski's or TheBloke's): each
.gguf file's header is validated before the import is accepted, the files are content-addressed,
the relation to the base is inferred as `quantized`, and pickle stays refused. Real GGUF files
are written byte by byte as the specification lays them out, and imported offline through the
endpoint and the management command users use."""

# The snapshot fixtures are imported from the lineage tests; pytest passes them by name.
# ruff: noqa: F811

import hashlib
import io
import struct
from pathlib import Path

import pytest
from django.core.management import call_command

from lineage.models import LineageEdge
from pedigree_client.artefacts import ArtefactError, inspect_gguf
from registry import hub, services
from registry.errors import InvalidInput
from registry.models import AuditEntry, Dataset, ModelVersion, RegisteredModel
from tests.lineage.test_hub_lineage import (  # noqa: F401  (fixtures)
    IMPORTS,
    hf_cache,
    no_network,
    roots,
)
from tests.registry.test_artefacts import write
from tests.registry.test_hub_import import FakeHub

pytestmark = pytest.mark.django_db

# Facts of bartowski/Llama-3.2-1B-Instruct-GGUF's card.
REPO = "bartowski/Llama-3.2-1B-Instruct-GGUF"
SHA = "8" * 40
BASE = "meta-llama/Llama-3.2-1B-Instruct"
CARD = (
    f"base_model: {BASE}\nlanguage:\n- en\nlicense: llama3.2\npipeline_tag: text-generation\n"
    "quantized_by: bartowski\ntags:\n- llama\n- meta\n"
)
GGUF_FILE = "Llama-3.2-1B-Instruct-Q4_K_M.gguf"
F32, Q4_K = 0, 12


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def gguf_bytes(
    *,
    magic: bytes = b"GGUF",
    version: int = 3,
    tensors=(("token_embd.weight", [256, 2], Q4_K), ("output_norm.weight", [8], F32)),
    tensor_count: int | None = None,
) -> bytes:
    """A GGUF file as the specification lays it out: header, metadata (a string, an integer and
    the tokenizer's array of strings), tensor records, then the data section aligned to 32."""
    metadata = [
        _string("general.architecture") + struct.pack("<I", 8) + _string("llama"),
        _string("general.file_type") + struct.pack("<I", 4) + struct.pack("<I", 15),
        _string("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, 3)
        + b"".join(_string(token) for token in ("<s>", "</s>", "hello")),
    ]
    sizes = {F32: (1, 4), Q4_K: (256, 144)}
    records, data, offset = b"", b"", 0
    for name, shape, kind in tensors:
        block, block_bytes = sizes[kind]
        count = 1
        for extent in shape:
            count *= extent
        nbytes = count // block * block_bytes
        records += _string(name) + struct.pack("<I", len(shape))
        records += b"".join(struct.pack("<Q", extent) for extent in shape)
        records += struct.pack("<IQ", kind, offset)
        chunk = bytes(range(256)) * (nbytes // 256 + 1)
        data += chunk[:nbytes] + b"\0" * (-nbytes % 32)
        offset += nbytes + (-nbytes % 32)
    header = magic + struct.pack("<I", version)
    header += struct.pack("<QQ", len(tensors) if tensor_count is None else tensor_count, 3)
    header += b"".join(metadata) + records
    return header + b"\0" * (-len(header) % 32) + data


def gguf_repo(folder: Path, content: bytes | None = None, *, card: str = CARD) -> Path:
    write(folder / GGUF_FILE, gguf_bytes() if content is None else content)
    write(folder / "README.md", f"---\n{card}---\n# Llamacpp imatrix Quantizations\n".encode())
    return folder


def post(api, folder="gguf"):
    return api.post(
        IMPORTS,
        {"repo_id": REPO, "revision": SHA, "snapshot_dir": f"teams/acme/{folder}", "team": "acme"},
        format="json",
    )


def test_a_gguf_only_repository_imports_with_its_header_validated(api_for, engineer, roots):
    gguf_repo(roots / "gguf")

    response = post(api_for(engineer))

    assert response.status_code == 201, response.json()
    version = ModelVersion.objects.get(pk=response.json()["version"]["id"])
    manifest = version.artefact_manifest
    assert manifest["format"] == "gguf"
    weights = next(f for f in manifest["files"] if f["path"] == GGUF_FILE)
    content = (roots / "gguf" / GGUF_FILE).read_bytes()
    assert weights["kind"] == "gguf" and weights["safetensors"] is None
    assert weights["sha256"] == hashlib.sha256(content).hexdigest()
    assert weights["size"] == len(content)
    assert weights["gguf"] == {
        "version": 3,
        "tensor_count": 2,
        "metadata_count": 3,
        "metadata": {"general.architecture": "llama", "general.file_type": 15},
        "parameters_by_dtype": {"F32": 8, "Q4_K": 512},
    }
    assert manifest["parameters_by_dtype"] == {"F32": 8, "Q4_K": 512}
    assert version.parameter_count == 520
    assert version.licence_declared == "LicenseRef-Llama-3.2"
    (edge,) = LineageEdge.objects.filter(child=version)
    assert edge.parent.hub_repo_id == BASE and edge.parent.unresolved
    assert edge.relation == "quantized" and edge.relation_inferred
    assert any(GGUF_FILE in why for why in edge.relation_evidence)


def test_the_management_command_imports_it_too(engineer, roots):
    out = io.StringIO()
    call_command(
        "import_hf",
        REPO,
        "--revision",
        SHA,
        "--snapshot-dir",
        str(gguf_repo(roots / "gguf")),
        "--user",
        engineer.username,
        stdout=out,
    )
    assert f"Imported {REPO}@{SHA[:12]}" in out.getvalue()
    assert ModelVersion.objects.get(hub_repo_id=REPO).artefact_manifest["format"] == "gguf"


def _truncated() -> bytes:
    return gguf_bytes()[:-100]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"GGML" + gguf_bytes()[4:], "does not start with 'GGUF'"),
        (gguf_bytes(version=1), "version 1 is not supported"),
        (gguf_bytes(tensor_count=2**40), "claims 1099511627776 tensors"),
        (gguf_bytes(tensor_count=5), "has 0 dimensions"),
        (_truncated(), "lies past the end of the file"),
        (gguf_bytes()[:10], "runs past the end of the file"),
        (gguf_bytes(tensors=(("w", [100], Q4_K),)), "not a multiple of the Q4_K block size"),
    ],
)
def test_a_bad_gguf_file_is_refused_naming_it_and_nothing_is_written(
    api_for, engineer, roots, content, says
):
    gguf_repo(roots / "gguf", content, card=CARD + "datasets:\n- acme/tickets\n")

    response = post(api_for(engineer))

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "gguf_invalid"
    assert GGUF_FILE in error["message"] and says in error["message"]
    assert not ModelVersion.objects.exists() and not RegisteredModel.objects.exists()
    assert not Dataset.objects.exists() and not AuditEntry.objects.exists()


def test_the_header_reader_checks_bounds_without_reading_tensor_data(tmp_path):
    path = write(tmp_path / "model.gguf", gguf_bytes())
    info = inspect_gguf(path)
    assert info.metadata["general.architecture"] == "llama"
    huge_string = bytearray(gguf_bytes())
    huge_string[24:32] = struct.pack("<Q", 2**62)  # the first key's length
    with pytest.raises(ArtefactError, match="claims 4611686018427387904 bytes"):
        inspect_gguf(write(tmp_path / "bad.gguf", bytes(huge_string)))


def test_pickle_stays_refused_beside_or_instead_of_gguf(api_for, engineer, roots):
    folder = roots / "pickle"
    write(folder / "pytorch_model.bin", b"\x80\x04not read")
    write(folder / "README.md", f"---\n{CARD}---\n".encode())

    response = post(api_for(engineer), "pickle")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_weights"
    gguf_repo(folder)
    accepted = post(api_for(engineer), "pickle")
    assert accepted.status_code == 201
    assert accepted.json()["excluded_files"] == ["pytorch_model.bin"]


def test_from_the_hub_itself_a_gguf_repository_needs_a_local_copy(
    engineer, team, roots, monkeypatch, tmp_path
):
    fake = FakeHub(gguf_repo(tmp_path / "remote"), repo_id=REPO, sha=SHA)
    monkeypatch.setattr(hub, "is_offline", lambda: False)
    monkeypatch.setattr(hub.remote, "HfApi", fake)

    with pytest.raises(InvalidInput) as caught:
        services.upstream_import(actor=engineer, team=team, repo_id=REPO, revision=SHA)

    assert caught.value.code == "gguf_needs_local_copy"
    assert f"hf download {REPO}" in caught.value.message and GGUF_FILE in caught.value.message
    assert fake.downloads == [] and not ModelVersion.objects.exists()
