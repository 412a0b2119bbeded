"""`pedigree datasets register PATH --name N --version V --licence L`: hash a dataset file here
and register it as a dataset version (creating the dataset in your team when it is new).

Registering the same file under the same label again changes nothing, so a training script can
run it every time; the same label for different bytes is refused.
"""

import argparse
import json
from pathlib import Path

from pedigree_client.api import JSON, ApiClient
from pedigree_client.artefacts import ArtefactError
from pedigree_client.artefacts.hashing import hash_file
from pedigree_client.cli.common import Commands, add_command, add_group, text_or_file
from pedigree_client.client import default_team
from pedigree_client.errors import CliError
from pedigree_client.output import Progress


def hash_dataset(path: Path) -> tuple[str, int]:
    """SHA-256 and size of the dataset file, read once."""
    if not path.exists():
        raise CliError(f"Nothing exists at {path}; give the dataset file.")
    if path.is_dir():
        raise CliError(
            f"{path} is a folder; register the dataset's file (an evaluation suite reads one "
            ".csv, .jsonl or .parquet file), or pack the folder into one archive first."
        )
    with Progress(f"Hashing {path.name}", total=path.stat().st_size) as progress:
        try:
            return hash_file(path, progress=progress.update)
        except ArtefactError as error:
            raise CliError(f"{path}: {error.message}") from None


def _find_dataset(client: ApiClient, name: str) -> JSON | None:
    # The name filter matches substrings; keep the exact name.
    matches = [d for d in client.list_all("datasets/", name=name) if d["name"] == name]
    return matches[0] if matches else None


def datasets_register(client: ApiClient, args: argparse.Namespace) -> int:
    ref = f"{args.name}@{args.version}"
    sha256, size = hash_dataset(Path(args.path))
    existing = client.get("dataset-versions/", dataset=args.name, version=args.version)
    if existing["results"]:
        found = existing["results"][0]
        if found["sha256"] != sha256:
            raise CliError(
                f"{ref} is already registered with sha256 {found['sha256'][:12]}…, but "
                f"{args.path} hashes to {sha256[:12]}…: register the changed data under a new "
                "--version."
            )
        return _report(found, args, note="already registered with this sha256; nothing changed")
    created_dataset = ""
    if _find_dataset(client, args.name) is None:
        team = args.team or default_team(client, option="--team")
        dataset: JSON = {"name": args.name, "team": team}
        if args.description:
            dataset["description"] = args.description
        if args.source:
            dataset["source"] = args.source
        client.post("datasets/", dataset)
        created_dataset = f"created dataset {args.name} in team {dataset['team']}"
    payload: JSON = {
        "dataset": args.name,
        "version": args.version,
        "licence_declared": args.licence,
        "sha256": sha256,
        "size_bytes": size,
        "contains_personal_data": args.personal_data,
        "sensitive_attributes": args.sensitive_attribute,
    }
    for key in ("uri", "row_count", "known_biases", "intended_use"):
        if getattr(args, key) is not None:
            payload[key] = getattr(args, key)
    return _report(client.post("dataset-versions/", payload), args, note=created_dataset)


def _report(dataset_version: JSON, args: argparse.Namespace, *, note: str) -> int:
    if args.json:
        print(json.dumps(dataset_version, indent=2, sort_keys=True))
        return 0
    print(
        f"Registered dataset {dataset_version['ref']} (id {dataset_version['id']}, "
        f"sha256:{dataset_version['sha256']}, {dataset_version['size_bytes']:,} bytes)"
    )
    if note:
        print(f"  {note}")
    print(f"  use it as --dataset train={dataset_version['ref']} in `pedigree register`")
    return 0


def add_commands(commands: Commands) -> None:
    datasets = add_group(
        commands,
        "datasets",
        examples=[
            "pedigree datasets register data/train.csv --name acme/tickets --version 2024-06 "
            "--licence CC-BY-4.0",
        ],
    )
    parser = add_command(
        datasets,
        "register",
        help="hash a dataset file here and register it as NAME@VERSION",
        description="Compute the file's SHA-256 and size on this machine, then register it as "
        "a version of dataset NAME (created in your team when it is new). Registering the "
        "same file again is a no-op; the same label for other bytes is an error.",
        examples=[
            "pedigree datasets register data/train.csv --name acme/tickets --version 2024-06 "
            "--licence CC-BY-4.0",
            "pedigree datasets register eval.parquet --name acme/tickets-eval --version v1 \\",
            "    --licence CC-BY-4.0 --uri file:///srv/datasets/tickets-eval-v1.parquet \\",
            "    --personal-data --sensitive-attribute region",
        ],
    )
    parser.add_argument("path", metavar="PATH", help="the dataset file")
    parser.add_argument("--name", required=True, help="dataset name, e.g. acme/tickets")
    parser.add_argument("--version", required=True, help="version label, e.g. 2024-06")
    parser.add_argument("--licence", required=True, help="declared licence (SPDX expression)")
    parser.add_argument("--team", metavar="SLUG", help="team of a new dataset (default: yours)")
    parser.add_argument(
        "--uri",
        help="where the file lives, e.g. file:///srv/data/tickets.csv (evaluation suites read "
        "it there, inside the server's artefact roots)",
    )
    parser.add_argument("--rows", dest="row_count", type=int, help="number of rows")
    parser.add_argument("--personal-data", action="store_true", help="the data holds personal data")
    parser.add_argument(
        "--sensitive-attribute",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a sensitive attribute's column, for fairness evaluations (repeatable)",
    )
    parser.add_argument("--known-biases", metavar="TEXT|@FILE", type=text_or_file)
    parser.add_argument("--intended-use", metavar="TEXT|@FILE", type=text_or_file)
    parser.add_argument(
        "--description", metavar="TEXT|@FILE", type=text_or_file, help="of a new dataset"
    )
    parser.add_argument("--source", metavar="URL", help="where a new dataset comes from")
    parser.add_argument("--json", action="store_true", help="print the dataset version as JSON")
    parser.set_defaults(handler=datasets_register)
