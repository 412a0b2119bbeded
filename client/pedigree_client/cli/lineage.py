"""`pedigree lineage VERSION [--descendants] [--depth N] [--format tree|json]`,
`pedigree parent add|correct` and `pedigree hold place|lift`."""

import argparse
import json
from collections import defaultdict
from typing import cast

from pedigree_client.api import JSON, ApiClient
from pedigree_client.cli.common import Commands, add_command, add_group, resolve_version
from pedigree_client.cli.proposals import print_proposed

HOLD_CATEGORIES = ["licence", "security", "safety", "legal", "data", "quality", "other"]


def _label(node: JSON) -> str:
    if node["kind"] == "dataset":
        return f"{node['ref']}  sha256:{node['sha256'][:12]}"
    if node.get("hidden"):
        return f"(a version you cannot see, id {node['version_id']})"
    held = "  HELD" if node.get("held") else ""
    if node.get("unresolved"):
        return f"{node['ref']}  [unresolved reference: no artefact, no licence evidence]{held}"
    return f"{node['ref']}  [{node['stage']}]  sha256:{node['artefact_digest'][:12]}{held}"


def render_tree(graph: JSON, *, descendants: bool) -> str:
    """The DAG as an indented tree from the focus version, up (parents, datasets) or down.
    A version reached again through another path (merges) is printed once, then referenced."""
    nodes = {node["id"]: node for node in graph["nodes"]}
    branches: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for edge in graph["edges"]:
        what = edge["relation"] if edge["kind"] == "derivation" else f"{edge['role']} data"
        if edge.get("relation_inferred") and not edge.get("relation_confirmed"):
            what += " (inferred, unconfirmed)"
        if descendants:
            if edge["kind"] == "derivation":
                branches[edge["source"]].append((what, edge["target"]))
        else:
            branches[edge["target"]].append((what, edge["source"]))
    lines = [_label(nodes[graph["focus"]])]
    shown = {graph["focus"]}

    def walk(key: str, prefix: str) -> None:
        children = branches.get(key, [])
        for index, (what, other) in enumerate(children):
            last = index == len(children) - 1
            repeat = other in shown and nodes[other]["kind"] == "version"
            suffix = "  (shown above)" if repeat else ""
            lines.append(
                f"{prefix}{'└── ' if last else '├── '}{what}: {_label(nodes[other])}{suffix}"
            )
            if not repeat:
                shown.add(other)
                walk(other, prefix + ("    " if last else "│   "))

    walk(graph["focus"], "")
    for hold in graph["holds"]:
        where = hold["on"] or f"a version you cannot see (id {hold['on_version_id']})"
        lines.append(
            f"Hold #{hold['id']} on {where}: {hold['reason']} "
            f"({hold['category']}, placed by {hold['placed_by']} at {hold['placed_at']})"
        )
    if graph["truncated"]:
        lines.append("(truncated: pass --depth to see a smaller neighbourhood)")
    return "\n".join(lines)


def lineage_show(client: ApiClient, args: argparse.Namespace) -> int:
    version = resolve_version(client, args.ref)
    graph = client.get(
        f"versions/{version['id']}/lineage/",
        direction="descendants" if args.descendants else "ancestors",
        depth=args.depth,
    )
    if args.format == "json":
        print(json.dumps(graph, indent=2, sort_keys=True))
    else:
        print(render_tree(graph, descendants=args.descendants))
    return 0


def _edge_line(edge: JSON) -> str:
    how = edge["relation"]
    if edge["relation_inferred"] and not edge["relation_confirmed_by"]:
        how += " (inferred: " + "; ".join(edge["relation_evidence"]) + ")"
    elif edge["relation_confirmed_by"]:
        how += f" (confirmed by {edge['relation_confirmed_by']})"
    unresolved = "  [unresolved reference]" if edge["parent_unresolved"] else ""
    return f"#{edge['id']}  {edge['child_ref']} —{how}→ {edge['parent_ref']}{unresolved}"


def parent_add(client: ApiClient, args: argparse.Namespace) -> int:
    version = resolve_version(client, args.ref)
    edges = client.post(
        f"versions/{version['id']}/parents/",
        {"parents": [{"version": args.parent, "relation": args.relation}]},
    )
    if isinstance(edges, dict):  # 202: protected lineage, the change is proposed
        print_proposed(edges)
        return 0
    for edge in cast("list[JSON]", edges):  # the change made: the version's parents
        print(_edge_line(edge))
    return 0


def parent_correct(client: ApiClient, args: argparse.Namespace) -> int:
    version = resolve_version(client, args.ref)
    payload: JSON = {"reason": args.reason}
    if args.relation:
        payload["relation"] = args.relation
    if args.parent:
        payload["parent"] = args.parent
    edge = client.request("PATCH", f"versions/{version['id']}/parents/{args.edge}/", json=payload)
    if "proposal" in edge:  # 202: protected lineage, the correction is proposed
        print_proposed(edge)
    else:
        print(_edge_line(edge))
    return 0


def hold_place(client: ApiClient, args: argparse.Namespace) -> int:
    payload = {"version": args.ref, "reason": args.reason, "category": args.category}
    if args.reference:
        payload["reference"] = args.reference
    hold = client.post("holds/", payload)
    if args.json:
        print(json.dumps(hold, indent=2, sort_keys=True))
        return 0
    print(
        f"Placed hold #{hold['id']} ({hold['category']}) on {hold['version_ref']}: "
        f"{hold['held_versions']} version(s) held, counting its descendants."
    )
    print(f"Lift it with `pedigree hold lift {hold['id']} --reason ...` (compliance staff).")
    return 0


def hold_lift(client: ApiClient, args: argparse.Namespace) -> int:
    hold = client.post(f"holds/{args.hold}/lift/", {"reason": args.reason})
    if args.json:
        print(json.dumps(hold, indent=2, sort_keys=True))
    else:
        print(f"Lifted hold #{hold['id']} on {hold['version_ref']}: {hold['lift_reason']}")
    return 0


def add_commands(commands: Commands) -> None:
    parser = add_command(
        commands,
        "lineage",
        examples=[
            "pedigree lineage acme/support-intent@v2",
            "pedigree lineage sentence-transformers/all-MiniLM-L6-v2@main --descendants --depth 2",
        ],
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument(
        "--descendants", action="store_true", help="show descendants instead of ancestors"
    )
    parser.add_argument("--depth", type=int, help="at most this many generations")
    parser.add_argument(
        "--format", choices=["tree", "json"], default="tree", help="an indented tree, or JSON"
    )
    parser.set_defaults(handler=lineage_show)

    parents = add_group(
        commands,
        "parent",
        examples=[
            "pedigree parent correct acme/llama-lora@0123abcd4567 12 --relation adapter "
            '--reason "adapter_config.json checked"'
        ],
    )
    parser = add_command(
        parents,
        "add",
        help="record one more parent of a version",
        description="Record one more parent of a version. Once its evidence is protected (an "
        "approval, a stage) the addition is recorded as a proposal for compliance to conclude "
        "instead, and nothing changes yet.",
        examples=["pedigree parent add acme/intent@v2 acme/intent@v1 --relation finetune"],
    )
    parser.add_argument("ref", metavar="VERSION", help="the child: MODEL@VERSION or id")
    parser.add_argument("parent", metavar="PARENT", help="the parent: MODEL@VERSION or id")
    parser.add_argument("--relation", required=True, help="finetune, adapter, quantized, ...")
    parser.set_defaults(handler=parent_add)
    parser = add_command(
        parents,
        "correct",
        help="correct the relation or the parent of one edge (compliance: confirms it)",
        description="Correct the relation or the parent of one edge. Once the version's evidence "
        "is protected (an approval, a stage) the correction is recorded as a proposal for "
        "compliance to conclude instead, and nothing changes yet.",
        examples=['pedigree parent correct acme/gguf@v1 7 --relation quantized --reason "GGUF"'],
    )
    parser.add_argument("ref", metavar="VERSION", help="the child: MODEL@VERSION or id")
    parser.add_argument("edge", type=int, metavar="EDGE_ID", help="the edge's id")
    parser.add_argument("--relation", help="the relation it really is")
    parser.add_argument("--parent", help="the parent it really is: MODEL@VERSION or id")
    parser.add_argument("--reason", required=True, help="why, for the audit log")
    parser.set_defaults(handler=parent_correct)

    holds = add_group(
        commands,
        "hold",
        examples=['pedigree hold place acme/support-intent@v1 --reason "licence withdrawn"'],
    )
    parser = add_command(
        holds,
        "place",
        help="hold a version: it and every version derived from it cannot be promoted",
        description="Place a hold on a version (compliance staff, or the owning team): it and "
        "every descendant are blocked from promotion until compliance staff lift it.",
        examples=[
            'pedigree hold place acme/support-intent@v1 --reason "upstream licence withdrawn" '
            "--category licence --reference LEGAL-1234",
        ],
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument("--reason", required=True, help="why, for the people it blocks")
    parser.add_argument(
        "--category", choices=HOLD_CATEGORIES, default="other", help="what kind of problem"
    )
    parser.add_argument("--reference", help="a ticket or document, e.g. LEGAL-1234")
    parser.add_argument("--json", action="store_true", help="print the hold as JSON")
    parser.set_defaults(handler=hold_place)
    parser = add_command(
        holds,
        "lift",
        help="lift a hold (compliance staff)",
        examples=['pedigree hold lift 7 --reason "licence clarified with the vendor"'],
    )
    parser.add_argument("hold", type=int, metavar="HOLD_ID", help="the hold's id")
    parser.add_argument("--reason", required=True, help="why it no longer applies")
    parser.add_argument("--json", action="store_true", help="print the hold as JSON")
    parser.set_defaults(handler=hold_lift)
