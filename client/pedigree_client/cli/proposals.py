"""`pedigree proposals list|accept|reject`: evidence-change proposals, the edits of protected
gate evidence that wait for a compliance conclusion."""

import argparse
import json

from pedigree_client.api import JSON, ApiClient
from pedigree_client.cli.common import Commands, add_command, add_group, resolve_version, table


def print_proposed(answer: JSON) -> None:
    """A 202 answer: the change was recorded as a proposal, not made."""
    print(f"Proposed, not changed: {answer['message']}")
    for why in answer["proposal"]["weakening"].values():
        print(f"  {why}")


def _summary(proposal: JSON) -> str:
    if proposal.get("kind", "fields") == "fields":
        changes = ", ".join(
            f"{field}: {proposal['before'].get(field)!r} → {value!r}"
            for field, value in proposal["changes"].items()
        )
    else:  # a lineage change: its input says little without the lineage, its effect says it
        changes = "; ".join(proposal["weakening"].values())
    return f"#{proposal['id']} on {proposal['target']} ({proposal['status']}): {changes}"


def proposals_list(client: ApiClient, args: argparse.Namespace) -> int:
    version = resolve_version(client, args.version)["id"] if args.version else None
    status = None if args.status == "all" else args.status
    rows = client.list_all("proposals/", status=status, version=version)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        row["change"] = "; ".join(row["weakening"].values()) or ", ".join(row["changes"])
    print(
        table(
            rows,
            [
                ("id", "ID"),
                ("target", "EVIDENCE"),
                ("status", "STATUS"),
                ("change", "WOULD CHANGE"),
                ("proposed_by", "BY"),
                ("reason", "WHY"),
            ],
        )
    )
    return 0


def proposals_conclude(client: ApiClient, args: argparse.Namespace) -> int:
    verb = args.proposals_command
    proposal = client.post(f"proposals/{args.id}/{verb}/", {"comment": args.comment or ""})
    print(f"{verb.capitalize()}ed {_summary(proposal)}")
    return 0


def add_commands(commands: Commands) -> None:
    proposals = add_group(commands, "proposals", examples=["pedigree proposals list"])
    parser = add_command(
        proposals,
        "list",
        help="list evidence-change proposals (compliance: every team's; others: their teams')",
        examples=[
            "pedigree proposals list",
            "pedigree proposals list --version acme/support-intent@v2 --status all --json",
        ],
    )
    parser.add_argument(
        "--status",
        default="pending",
        choices=["pending", "accepted", "rejected", "all"],
        help="which proposals",
    )
    parser.add_argument("--version", metavar="VERSION", help="only those on this version")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=proposals_list)
    for verb, help, example in (
        ("accept", "make the proposed change (compliance outside the owning team)", ""),
        ("reject", "refuse the proposed change, saying why (compliance)", ' --comment "why"'),
    ):
        parser = add_command(
            proposals, verb, help=help, examples=[f"pedigree proposals {verb} 12{example}"]
        )
        parser.add_argument("id", type=int, metavar="ID", help="the proposal's id")
        parser.add_argument("--comment", required=verb == "reject", help="why (required to reject)")
        parser.set_defaults(handler=proposals_conclude)
