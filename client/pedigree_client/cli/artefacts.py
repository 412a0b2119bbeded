"""`pedigree artefacts inspect|upload` and `pedigree import-hf`, on the client library's
local inspection, uploads (`pedigree_client.uploads`) and Hub import."""

import argparse
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pedigree_client.api import JSON, ApiClient
from pedigree_client.artefacts import weight_parameters
from pedigree_client.cli.common import Commands, add_command, add_group
from pedigree_client.client import default_team, hub_import, inspect_on_server
from pedigree_client.output import Progress
from pedigree_client.uploads import inspect_locally, upload_artefact


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
    if args.on_server:
        api = client or ApiClient(args.url, args.token)
        with _waiting(f"Inspecting {args.path} on the server"):
            manifest = inspect_on_server(api, args.path)["manifest"]
    else:
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


def base_revision(value: str) -> tuple[str, str]:
    """`--base-revision REPO@SHA`."""
    repo_id, sep, revision = value.rpartition("@")
    if not sep or not repo_id or not revision:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not REPO@SHA (e.g. meta-llama/Llama-3.1-8B@<40-character commit>)"
        )
    return repo_id, revision


def import_hf(client: ApiClient, args: argparse.Namespace) -> int:
    team = args.team or default_team(client, option="--team")
    with _waiting(f"Importing {args.repo_id} (card, safetensors headers, hashes)"):
        result = hub_import(
            client,
            args.repo_id,
            team=team,
            revision=args.revision,
            snapshot_dir=args.snapshot_dir,
            with_bases=args.with_bases,
            base_revisions=dict(args.base_revision or []),
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
        if base.get("unresolved"):
            where = f"{where}: unresolved reference, no artefact or licence evidence yet"
        print(f"  base model  {base['repo_id']} ({where})")
    if result["excluded_files"]:
        print(f"  left out    {', '.join(result['excluded_files'])} (pickle, never read)")
    return 0


def add_commands(commands: Commands) -> None:
    artefacts = add_group(
        commands,
        "artefacts",
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
            "pedigree artefacts inspect teams/acme/runs/v2 --on-server",
        ],
    )
    parser.add_argument("path", metavar="PATH", help="artefact file or folder")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.add_argument(
        "--on-server",
        action="store_true",
        help="PATH is on the server, inside your team's area of its artefact roots: the server "
        "inspects it (waiting for its task when the artefact is large)",
    )
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
    parser.add_argument(
        "--with-bases",
        action="store_true",
        help="import the card's base models too (recursively, bounded) where not imported yet",
    )
    parser.add_argument(
        "--base-revision",
        metavar="REPO@SHA",
        action="append",
        type=base_revision,
        help="link this commit of a base model (repeatable; default: the newest imported)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=import_hf)
