"""`pedigree artefacts inspect|upload` and `pedigree import-hf`.

Files are hashed locally with a progress bar before an upload, so the digest the server
computes can be checked against the one computed here.
"""

import argparse
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

from pedigree_client.api import JSON, ApiClient, CliError
from pedigree_client.artefacts import (
    ArtefactError,
    ArtefactManifest,
    inspect_artefact,
    weight_parameters,
)
from pedigree_client.cli.common import Commands, add_command, add_group, default_team
from pedigree_client.cli.output import Progress

# Hashing a large upload on the server takes a while after the last byte is sent.
UPLOAD_READ_TIMEOUT = 3600
IMPORT_READ_TIMEOUT = 3600


def inspect_locally(path: Path) -> ArtefactManifest:
    """Validate and hash an artefact on this machine, showing hashing progress."""
    with Progress(f"Hashing {path.name}") as progress:

        def report(relpath: str, done: int, total: int) -> None:
            progress.update(done, total=total)

        try:
            return inspect_artefact(path, progress=report)
        except ArtefactError as error:
            raise CliError(f"{path}: {error.message}") from None


class MultipartBody:
    """A multipart/form-data body read from the files while it is sent: memory stays flat
    whatever their size. Each part is named by the file's path relative to the artefact."""

    def __init__(self, files: list[tuple[str, Path]], *, on_read: Callable[[int], None]):
        boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self._parts: list[bytes | Path] = []
        for name, file in files:
            if any(char in name for char in '"\r\n\\'):
                raise CliError(f"Cannot upload {name!r}: rename it without quotes or backslashes.")
            head = (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"; filename="{file.name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            )
            self._parts += [head.encode(), file, b"\r\n"]
        self._parts.append(f"--{boundary}--\r\n".encode())
        self._length = sum(
            len(part) if isinstance(part, bytes) else part.stat().st_size for part in self._parts
        )
        self._chunks = self._iterate()
        self._chunk = b""
        self._offset = 0
        self._on_read = on_read

    def __len__(self) -> int:
        return self._length

    def _iterate(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
                continue
            stream: BinaryIO
            with part.open("rb") as stream:
                while chunk := stream.read(1024 * 1024):
                    yield chunk

    def read(self, size: int = -1) -> bytes:
        pieces = []
        wanted = size
        while wanted != 0:
            if self._offset == len(self._chunk):
                self._chunk, self._offset = next(self._chunks, b""), 0
                if not self._chunk:
                    break
            end = len(self._chunk) if wanted < 0 else min(len(self._chunk), self._offset + wanted)
            # Only the bytes handed out are copied, never the rest of the chunk.
            pieces.append(self._chunk[self._offset : end])
            wanted = wanted if wanted < 0 else wanted - (end - self._offset)
            self._offset = end
        data = b"".join(pieces)
        self._on_read(len(data))
        return data


def upload_artefact(client: ApiClient, path: Path) -> str:
    """Hash `path` (a file or a folder) locally, stream it to the server and check that both
    sides computed the same digest. Returns the upload id to register a version from."""
    path = Path(path)
    manifest = inspect_locally(path)
    base = path if path.is_dir() else path.parent
    files = [(file.path, base / file.path) for file in manifest.files]
    with Progress(f"Uploading {path.name}") as progress:
        body = MultipartBody(files, on_read=progress.advance)
        progress.total = len(body)
        upload = client.request(
            "POST",
            "artefacts/uploads/",
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=(client.timeout, UPLOAD_READ_TIMEOUT),
        )
    if upload["digest"] != manifest.digest:
        raise CliError(
            f"The server computed digest {upload['digest']} for upload {upload['id']}, but the "
            f"files here hash to {manifest.digest}: they changed during the upload or were "
            "corrupted on the way; upload again."
        )
    return cast(str, upload["id"])


def print_manifest(manifest: JSON) -> None:
    by_dtype = manifest["parameters_by_dtype"]
    dtypes = ", ".join(f"{dtype} {count:,}" for dtype, count in by_dtype.items()) or "no tensors"
    print(f"Format      {manifest['format']}")
    print(f"Digest      sha256:{manifest['digest']}")
    print(f"Size        {manifest['total_size']:,} bytes in {len(manifest['files'])} files")
    print(f"Parameters  {weight_parameters(by_dtype):,} ({dtypes})")
    adapter = manifest.get("adapter")
    if adapter:
        print(
            f"Adapter     {adapter.get('peft_type') or 'PEFT'} r={adapter.get('r')} on base "
            f"{adapter.get('base_model_name_or_path') or 'not named'}"
        )
    width = max(len(file["path"]) for file in manifest["files"])
    for file in manifest["files"]:
        tensors = file["safetensors"]
        extra = f"  {tensors['tensor_count']} tensors" if tensors else ""
        print(
            f"  {file['path'].ljust(width)}  {file['kind']:<14} {file['size']:>14,}  "
            f"{file['sha256'][:16]}…{extra}"
        )


def artefacts_inspect(client: ApiClient | None, args: argparse.Namespace) -> int:
    manifest = inspect_locally(Path(args.path)).to_dict()
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        print_manifest(manifest)
    return 0


def artefacts_upload(client: ApiClient, args: argparse.Namespace) -> int:
    upload_id = upload_artefact(client, Path(args.path))
    if args.json:
        print(json.dumps(client.get(f"artefacts/uploads/{upload_id}/"), indent=2))
    else:
        print(f"Uploaded {args.path} as upload {upload_id}")
    return 0


@contextmanager
def _waiting(desc: str) -> Iterator[None]:
    """Elapsed time while the server works on a request it cannot report progress of."""
    with Progress(desc, unit=None) as progress:
        done = threading.Event()

        def tick() -> None:
            while not done.wait(0.5):
                progress.tick()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()


def import_hf(client: ApiClient, args: argparse.Namespace) -> int:
    payload = {"repo_id": args.repo_id, "team": args.team or default_team(client)}
    if args.revision:
        payload["revision"] = args.revision
    if args.snapshot_dir:
        payload["snapshot_dir"] = args.snapshot_dir
    with _waiting(f"Importing {args.repo_id} (card, safetensors headers, hashes)"):
        result = client.request(
            "POST", "imports/hf/", json=payload, timeout=(client.timeout, IMPORT_READ_TIMEOUT)
        )
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    version = result["version"]
    licence = result["licence"] or {}
    state = "Imported" if result["created"] else "Already imported:"
    print(f"{state} {version['ref']} (revision {version['hub_revision']})")
    review = " (needs review)" if licence.get("review_required") else ""
    print(f"  licence     {version['licence_declared']}{review}")
    print(f"  parameters  {version['parameter_count']:,}")
    print(f"  digest      sha256:{version['artefact_digest']}")
    print(f"  datasets    {len(result['datasets'])}: {', '.join(result['datasets']) or 'none'}")
    for base in result["base_models"]:
        where = base["registered"] or "not registered yet"
        print(f"  base model  {base['repo_id']} ({where})")
    if result["excluded_files"]:
        print(f"  left out    {', '.join(result['excluded_files'])} (pickle, never read)")
    return 0


def add_commands(commands: Commands) -> None:
    artefacts = add_group(
        commands,
        "artefacts",
        help="inspect or upload model artefacts",
        examples=["pedigree artefacts inspect ./out/intent-v2"],
    )
    parser = add_command(
        artefacts,
        "inspect",
        help="validate and hash an artefact on this machine (no server needed)",
        description="Validate safetensors headers, refuse pickle files, hash every file and "
        "print the manifest Pedigree would record.",
        examples=[
            "pedigree artefacts inspect ./out/intent-v2",
            "pedigree artefacts inspect model.safetensors --json",
        ],
    )
    parser.add_argument("path", metavar="PATH", help="artefact file or folder")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(handler=artefacts_inspect, needs_server=False)
    parser = add_command(
        artefacts,
        "upload",
        help="hash an artefact locally, then stream it to the server",
        examples=["pedigree artefacts upload ./out/intent-v2"],
    )
    parser.add_argument("path", metavar="PATH", help="artefact file or folder")
    parser.add_argument("--json", action="store_true", help="print the upload as JSON")
    parser.set_defaults(handler=artefacts_upload)

    parser = add_command(
        commands,
        "import-hf",
        help="import a Hugging Face Hub model revision as an upstream version",
        description="Read the model card (licence, datasets, base models), pin the revision "
        "SHA and read the safetensors headers. With HF_HUB_OFFLINE=1 on the server, reads the "
        "server's HF cache; --snapshot-dir names a folder inside the server's artefact roots.",
        examples=[
            "pedigree import-hf sentence-transformers/all-MiniLM-L6-v2 "
            "--revision c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
        ],
    )
    parser.add_argument(
        "repo_id", metavar="REPO_ID", help="e.g. sentence-transformers/all-MiniLM-L6-v2"
    )
    parser.add_argument("--revision", help="commit SHA, branch or tag (default: main)")
    parser.add_argument("--snapshot-dir", metavar="DIR", help="snapshot folder on the server")
    parser.add_argument("--team", metavar="SLUG", help="importing team (default: your only team)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=import_hf)
