"""The hostile corpus: artefacts, paths, upload names and webhook targets an attacker sends.

One table per kind of input; `tests/registry/test_hostile_corpus.py` pushes every row through
every entry point that takes that kind (upload, register, import, inspect, inspection task,
the `pedigree` CLI; the webhook admin, service and delivery), expecting a clear refusal and
nothing changed. A row names the codes that are right refusals: entry points may refuse the
same input at different steps (an import leaves pickle files out, then finds no weights).
"""

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pedigree_client.artefacts import PICKLE_SUFFIXES
from tests.registry.test_artefacts import MALFORMED, save_small_model, write

CARD = b"---\nlicense: mit\n---\n# Hostile\n"
SECRET = b"secret text of another team, never to be echoed"
# A legal `__metadata__` block of 1 MB: accepted, but a manifest keeps only 64 KiB of it.
OVERSIZED_METADATA = {"notes": "x" * 1_000_000, "format": "pt"}


@dataclass(frozen=True)
class HostileArtefact:
    """`build(folder, outside)` writes the artefact into `folder`; `outside` is a folder out of
    every artefact root, holding a valid model and a secret file. `local` is False where the
    attack needs files on the server (a symlink means nothing once uploaded as bytes)."""

    id: str
    build: Callable[[Path, Path], None]
    codes: frozenset[str]
    local: bool = True


def _content(name: str, content: bytes) -> Callable[[Path, Path], None]:
    def build(folder: Path, outside: Path) -> None:
        write(folder / name, content)
        write(folder / "README.md", CARD)

    return build


def _with_model(extra: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def build(folder: Path, outside: Path) -> None:
        save_small_model(folder / "model.safetensors")
        write(folder / "README.md", CARD)
        extra(folder, outside)

    return build


def _torch_zip(folder: Path, outside: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"w": torch.ones(2)}, folder / "model.safetensors")  # written, never loaded
    write(folder / "README.md", CARD)


def _link(name: str, target: str) -> Callable[[Path, Path], None]:
    def extra(folder: Path, outside: Path) -> None:
        path = folder / name
        path.unlink(missing_ok=True)
        path.symlink_to(outside / target)

    return extra


def _counted(rows: list[tuple[str, bytes]]) -> list[tuple[str, str, bytes]]:
    seen: dict[str, int] = {}
    named = []
    for code, content in rows:
        seen[code] = seen.get(code, 0) + 1
        named.append((f"{code}-{seen[code]}", code, content))
    return named


ARTEFACTS: list[HostileArtefact] = [
    # Malformed safetensors, each failure with its own code.
    *(
        HostileArtefact(
            f"malformed-{name}", _content("model.safetensors", content), frozenset({code})
        )
        for name, code, content in _counted(MALFORMED)
    ),
    # Pickles in every disguise: by suffix (an import leaves them out, then has no weights) ...
    *(
        HostileArtefact(
            f"pickle{suffix}",
            _content(f"model{suffix}", pickle.dumps({"w": 1})),
            frozenset({"pickle_refused", "no_weights"}),
        )
        for suffix in sorted(PICKLE_SUFFIXES)
    ),
    HostileArtefact(
        "pickle.BIN-uppercase",
        _content("PYTORCH_MODEL.BIN", pickle.dumps({"w": 1})),
        frozenset({"pickle_refused", "no_weights"}),
    ),
    # ... and by content, renamed .safetensors.
    *(
        HostileArtefact(
            f"pickle-protocol-{protocol}-as-safetensors",
            _content("model.safetensors", pickle.dumps({"w": 1}, protocol=protocol)),
            frozenset({"pickle_content", "header_too_large"}),
        )
        for protocol in (0, 2, 4, 5)
    ),
    HostileArtefact("torch-zip-as-safetensors", _torch_zip, frozenset({"pickle_content"})),
    # Symlinks out of the roots, read before nothing: weights, the card, a folder.
    HostileArtefact(
        "symlinked-weights-outside",
        _with_model(_link("model.safetensors", "model.safetensors")),
        frozenset({"outside_roots", "not_in_area", "not_found"}),
        local=False,
    ),
    HostileArtefact(
        "symlinked-card-outside",
        _with_model(_link("README.md", "secret.md")),
        frozenset({"outside_roots", "not_in_area", "not_found"}),
        local=False,
    ),
    HostileArtefact(
        "symlinked-folder-outside",
        _with_model(_link("extra", "")),
        frozenset({"symlinked_directory"}),
        local=False,
    ),
]


def build_outside(outside: Path) -> Path:
    save_small_model(outside / "model.safetensors")
    write(outside / "secret.md", SECRET)
    return outside


@dataclass(frozen=True)
class HostilePath:
    """A server path as a client names it; `{outside}` is a folder out of every root (with a
    valid model in it), `{area}` the caller's own team area."""

    id: str
    raw: str
    codes: frozenset[str]


_TRAVERSAL = frozenset({"parent_traversal"})
# Another team's area, or anywhere outside the caller's, answers 404 as if nothing were there.
_ELSEWHERE = frozenset({"outside_roots", "not_in_area", "missing_file", "not_found"})

PATHS: list[HostilePath] = [
    HostilePath("dot-dot", "../outside", _TRAVERSAL),
    HostilePath("dot-dot-in-area", "teams/acme/../../../outside", _TRAVERSAL),
    HostilePath("percent-encoded", "%2e%2e/%2e%2e/outside", _TRAVERSAL),
    HostilePath("double-encoded", "%252e%252e%252f%252e%252e%252foutside", _TRAVERSAL),
    HostilePath("absolute-outside", "{outside}", _ELSEWHERE),
    HostilePath("absolute-etc", "/etc", _ELSEWHERE),
    HostilePath("file-uri", "file://{outside}", _ELSEWHERE),
    HostilePath("backslashes", "teams\\acme\\..\\..\\..\\outside", _ELSEWHERE),
    HostilePath("another-teams-area", "teams/globex/secret-model", _ELSEWHERE),
    HostilePath("the-whole-uploads-folder", "uploads", _ELSEWHERE),
    # The JSON parser refuses a NUL in any string (PostgreSQL cannot store one) before any
    # path is looked at; a form or a command line reaches the path check.
    HostilePath(
        "nul-byte",
        "teams/acme/model\x00.safetensors",
        frozenset({"parse_error", "nul_in_path", "invalid"}),
    ),
]

# Multipart file names of an upload: each is a path relative to the artefact folder.
UPLOAD_NAMES: list[tuple[str, str]] = [
    ("dot-dot", "../model.safetensors"),
    ("dot-dot-deep", "a/../../model.safetensors"),
    ("absolute", "/etc/model.safetensors"),
    ("backslashes", "a\\..\\..\\model.safetensors"),
    ("nul-byte", "a\x00/model.safetensors"),
    ("empty-part", "a//model.safetensors"),
    ("dot", "./model.safetensors"),
    ("hidden", ".git/model.safetensors"),
    ("pickle-suffix", "model.ckpt"),
]


def webhook_targets(port: int) -> list[str]:
    """Destinations a webhook must never reach; those on `port` point at the loopback canary,
    however the address is written."""
    return [
        f"http://127.0.0.1:{port}/hook",
        f"http://localhost:{port}/hook",
        f"http://127.1:{port}/hook",
        f"http://2130706433:{port}/hook",  # 127.0.0.1 as one integer
        f"http://0x7f000001:{port}/hook",
        f"http://0.0.0.0:{port}/hook",
        f"http://[::1]:{port}/hook",
        f"http://[::ffff:127.0.0.1]:{port}/hook",
        f"http://user:pass@127.0.0.1:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "file:///etc/passwd",
        "gopher://127.0.0.1:25/",
    ]
