"""`pedigree whoami`, `pedigree models list`, `pedigree versions show`."""

import argparse
import json

from pedigree_client.api import JSON, ApiClient


def _table(rows: list[JSON], columns: list[tuple[str, str]]) -> str:
    widths = [
        max([len(title)] + [len(str(row.get(key) or "")) for row in rows]) for key, title in columns
    ]
    lines = [
        "  ".join(title.ljust(width) for (_, title), width in zip(columns, widths, strict=True))
    ]
    for row in rows:
        lines.append(
            "  ".join(
                str(row.get(key) or "").ljust(width)
                for (key, _), width in zip(columns, widths, strict=True)
            )
        )
    return "\n".join(line.rstrip() for line in lines)


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
        _table(
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
    ("registered_by", "Registered by"),
    ("registered_at", "Registered at"),
]


def versions_show(client: ApiClient, args: argparse.Namespace) -> int:
    version = client.version(args.ref)
    if args.json:
        print(json.dumps(version, indent=2))
        return 0
    width = max(len(title) for _, title in VERSION_SUMMARY)
    for key, title in VERSION_SUMMARY:
        value = version.get(key)
        if value not in (None, ""):
            print(f"{title.ljust(width)}  {value}")
    return 0


def versions_list(client: ApiClient, args: argparse.Namespace) -> int:
    versions = client.list_all("versions/", model=args.model, stage=args.stage)
    if args.json:
        print(json.dumps(versions, indent=2))
        return 0
    print(
        _table(
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


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser("whoami", help="show who the token belongs to")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=whoami)

    models = commands.add_parser("models", help="list models").add_subparsers(
        dest="models_command", required=True, metavar="ACTION"
    )
    parser = models.add_parser("list", help="list the models you can see")
    parser.add_argument("--kind", choices=["upstream", "derived"])
    parser.add_argument("--team", help="team slug")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=models_list)

    versions = commands.add_parser("versions", help="show model versions").add_subparsers(
        dest="versions_command", required=True, metavar="ACTION"
    )
    parser = versions.add_parser("show", help="show one version")
    parser.add_argument("ref", metavar="MODEL@VERSION", help="e.g. acme/support-intent@v1")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=versions_show)
    parser = versions.add_parser("list", help="list versions")
    parser.add_argument("--model", help="model name")
    parser.add_argument("--stage", choices=["development", "staging", "production", "archived"])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=versions_list)
