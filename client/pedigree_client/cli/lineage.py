"""`pedigree lineage VERSION [--descendants] [--depth N] [--format tree|json]`."""

import argparse
import json
from collections import defaultdict

from pedigree_client.api import JSON, ApiClient


def _label(node: JSON) -> str:
    if node["kind"] == "dataset":
        return f"{node['ref']}  sha256:{node['sha256'][:12]}"
    if node.get("hidden"):
        return f"(a version you cannot see, id {node['version_id']})"
    held = "  HELD" if node.get("held") else ""
    return f"{node['ref']}  [{node['stage']}]  sha256:{node['artefact_digest'][:12]}{held}"


def render_tree(graph: JSON, *, descendants: bool) -> str:
    """The DAG as an indented tree from the focus version, up (parents, datasets) or down.
    A version reached again through another path (merges) is printed once, then referenced."""
    nodes = {node["id"]: node for node in graph["nodes"]}
    branches: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for edge in graph["edges"]:
        what = edge["relation"] if edge["kind"] == "derivation" else f"{edge['role']} data"
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
    version = client.version(args.ref)
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


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "lineage", help="show what a version was derived from (or what derives from it)"
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument(
        "--descendants", action="store_true", help="show descendants instead of ancestors"
    )
    parser.add_argument("--depth", type=int, help="at most this many generations")
    parser.add_argument("--format", choices=["tree", "json"], default="tree")
    parser.set_defaults(handler=lineage_show)
