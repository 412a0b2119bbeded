"""`pedigree whoami`, `pedigree models list`, `pedigree versions show|list|update`."""

import argparse
import json

from pedigree_client.api import ApiClient
from pedigree_client.cli.common import (
    RISK_TIERS,
    Commands,
    add_command,
    add_group,
    resolve_version,
    table,
    text_or_file,
)
from pedigree_client.cli.proposals import print_proposed
from pedigree_client.errors import CliError

# The version fields `versions update` sets (PATCH), by option.
UPDATABLE = {
    "intended_use": "--intended-use",
    "known_limitations": "--known-limitations",
    "out_of_scope_uses": "--out-of-scope-uses",
    "risk_tier": "--risk-tier",
    "licence_declared": "--licence",
    "description": "--description",
}


def whoami(client: ApiClient, args: argparse.Namespace) -> int:
    me = client.get("me/")
    if args.json:
        print(json.dumps(me, indent=2))
    else:
        role = "compliance" if me["compliance"] else "engineer"
        print(f"{me['username']} ({role}); teams: {', '.join(me['teams']) or 'none'}")
    return 0


def models_list(client: ApiClient, args: argparse.Namespace) -> int:
    models = client.list_all("models/", kind=args.kind, team=args.team)
    if args.json:
        print(json.dumps(models, indent=2))
        return 0
    if not models:
        print("No models you can see.")
        return 0
    print(
        table(
            models,
            [
                ("name", "NAME"),
                ("kind", "KIND"),
                ("team", "TEAM"),
                ("task", "TASK"),
                ("visibility", "VISIBILITY"),
            ],
        )
    )
    return 0


VERSION_SUMMARY = [
    ("ref", "Version"),
    ("stage", "Stage"),
    ("risk_tier", "Risk tier"),
    ("licence_declared", "Licence (declared)"),
    ("licence_concluded", "Licence (concluded)"),
    ("artefact_digest", "Digest"),
    ("parameter_count", "Parameters"),
    ("hub_repo_id", "Hub repo"),
    ("hub_revision", "Hub revision"),
    ("intended_use", "Intended use"),
    ("known_limitations", "Known limitations"),
    ("registered_by", "Registered by"),
    ("registered_at", "Registered at"),
]


def versions_show(client: ApiClient, args: argparse.Namespace) -> int:
    version = resolve_version(client, args.ref)
    if args.json:
        print(json.dumps(version, indent=2))
        return 0
    width = max(len(title) for _, title in VERSION_SUMMARY)
    for key, title in VERSION_SUMMARY:
        value = version.get(key)
        if value not in (None, ""):
            # Multi-line texts (limitations, intended use) stay in the value column.
            indented = str(value).replace("\n", "\n" + " " * (width + 2))
            print(f"{title.ljust(width)}  {indented}")
    return 0


def versions_list(client: ApiClient, args: argparse.Namespace) -> int:
    versions = client.list_all("versions/", model=args.model, stage=args.stage)
    if args.json:
        print(json.dumps(versions, indent=2))
        return 0
    print(
        table(
            versions,
            [
                ("ref", "VERSION"),
                ("stage", "STAGE"),
                ("risk_tier", "RISK"),
                ("licence_declared", "LICENCE"),
            ],
        )
    )
    return 0


def versions_update(client: ApiClient, args: argparse.Namespace) -> int:
    changes = {
        field: getattr(args, field) for field in UPDATABLE if getattr(args, field) is not None
    }
    if not changes:
        raise CliError(f"Nothing to update: give at least one of {', '.join(UPDATABLE.values())}.")
    version = resolve_version(client, args.ref)
    payload = {**changes, **({"reason": args.reason} if args.reason else {})}
    updated = client.request("PATCH", f"versions/{version['id']}/", json=payload)
    if args.json:
        print(json.dumps(updated, indent=2))
    elif "proposal" in updated:
        # 202: the change could weaken protected gate evidence; nothing changed yet.
        print_proposed(updated)
    else:
        print(f"Updated {updated['ref']}: {', '.join(UPDATABLE[field] for field in changes)}")
    return 0


def add_commands(commands: Commands) -> None:
    parser = add_command(commands, "whoami", examples=["pedigree whoami"])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=whoami)

    models = add_group(commands, "models", examples=["pedigree models list --kind derived"])
    parser = add_command(
        models,
        "list",
        help="list the models you can see",
        examples=["pedigree models list", "pedigree models list --kind upstream --json"],
    )
    parser.add_argument("--kind", choices=["upstream", "derived"])
    parser.add_argument("--team", help="team slug")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=models_list)

    versions = add_group(
        commands,
        "versions",
        examples=["pedigree versions show acme/support-intent@v1"],
    )
    parser = add_command(
        versions,
        "show",
        help="show one version",
        examples=["pedigree versions show acme/support-intent@v1", "pedigree versions show 42"],
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=versions_show)
    parser = add_command(
        versions,
        "list",
        help="list versions",
        examples=["pedigree versions list --model acme/support-intent --stage production"],
    )
    parser.add_argument("--model", help="model name")
    parser.add_argument("--stage", choices=["development", "staging", "production", "archived"])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=versions_list)
    parser = add_command(
        versions,
        "update",
        help="fill in a version's intended use, known limitations, risk tier, licence",
        description="Change a version's descriptive fields (the gate's metadata check needs "
        "intended use, known limitations and a declared licence). Only the fields given change. "
        "A change that could weaken protected gate evidence (a lower risk tier, another licence, "
        "fewer limitations of an approved or staged version) is recorded as a proposal for "
        "compliance to conclude instead, and nothing changes yet.",
        examples=[
            'pedigree versions update acme/support-intent@v2 --known-limitations "English only"',
            "pedigree versions update 42 --risk-tier limited --intended-use @use.md",
        ],
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument("--intended-use", metavar="TEXT|@FILE", type=text_or_file)
    parser.add_argument("--known-limitations", metavar="TEXT|@FILE", type=text_or_file)
    parser.add_argument("--out-of-scope-uses", metavar="TEXT|@FILE", type=text_or_file)
    parser.add_argument("--risk-tier", choices=RISK_TIERS)
    parser.add_argument("--licence", dest="licence_declared", help="declared licence (SPDX)")
    parser.add_argument("--description", metavar="TEXT|@FILE", type=text_or_file)
    parser.add_argument(
        "--reason",
        metavar="TEXT|@FILE",
        type=text_or_file,
        help="why: kept with the proposal when the change needs a compliance conclusion",
    )
    parser.add_argument("--json", action="store_true", help="print the updated version as JSON")
    parser.set_defaults(handler=versions_update)
