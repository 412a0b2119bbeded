"""What every command shares: how its help is laid out, and how it names a version or a team."""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

from pedigree_client.api import JSON, ApiClient

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
RISK_TIERS = ["minimal", "limited", "high", "unacceptable"]

# Every command: the module of pedigree_client.cli that defines it, and its help, which
# `pedigree --help` lists without importing the modules of commands not run.
COMMANDS: dict[str, tuple[str, str]] = {
    "whoami": ("catalogue", "show who the token belongs to"),
    "models": ("catalogue", "list models"),
    "versions": ("catalogue", "show, list and update model versions"),
    "datasets": ("datasets", "register datasets"),
    "register": ("register", "register a version with its parents, training run and datasets"),
    "artefacts": ("artefacts", "inspect or upload model artefacts"),
    "import-hf": (
        "artefacts",
        "import a Hugging Face Hub model revision as an upstream version",
    ),
    "suites": ("evaluate", "list evaluation suites"),
    "evaluate": ("evaluate", "evaluate a version on evaluation suites (quality and fairness)"),
    "evaluation": ("evaluate", "show an evaluation run and its results"),
    "gate": ("gate", "may this version enter a stage? exit 0 pass, 1 fail, 2 error"),
    "promote": ("gate", "promote a version (runs the gate)"),
    "approve": ("gate", "approve or reject a version (compliance)"),
    "proposals": (
        "proposals",
        "list, accept or reject proposed changes to protected gate evidence",
    ),
    "compliance": (
        "gate",
        "does the version still pass the gate of its stage? exit 0 yes, 1 no, 2 error",
    ),
    "licence-check": (
        "licensing",
        "does the version's licensing allow this use? exit 0 pass, 1 fail, 2 error",
    ),
    "export": ("licensing", "export a version and its lineage (SPDX 2.3, SPDX 3.0, model card)"),
    "lineage": ("lineage", "show what a version was derived from (or what derives from it)"),
    "hold": ("lineage", "place or lift a hold that blocks a version and its descendants"),
    "parent": ("lineage", "add a parent to a version, or correct one an import recorded"),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default when it has one worth reading (not None, False or empty),
    wraps prose, and keeps indented lines (the examples) as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default in ([], ""):
            return action.help
        return super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            keep = not line or line.startswith(" ")
            lines.append(indent + line if keep else super()._fill_text(line, width, indent))
        return "\n".join(lines)


def text_or_file(value: str) -> str:
    """An option's TEXT, or @FILE holding it (long, multi-line descriptions)."""
    if not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {value[1:]}: {error.strerror}") from None


def _epilog(examples: Sequence[str]) -> str:
    return "examples:\n" + "\n".join(f"  {example}" for example in examples)


def add_command(
    commands: Commands,
    name: str,
    *,
    examples: Sequence[str],
    help: str | None = None,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A sub-command whose --help shows its defaults and ends with examples; a command's
    `help` (an action's must be given) is in COMMANDS."""
    help = help or COMMANDS[name][1]
    return commands.add_parser(
        name,
        help=help,
        description=description or f"{help[0].upper()}{help[1:]}.",
        epilog=_epilog(examples),
        formatter_class=HelpFormatter,
    )


def add_group(commands: Commands, name: str, *, examples: Sequence[str]) -> Commands:
    """A command made of actions (`pedigree versions show|list|update`)."""
    parser = add_command(commands, name, examples=examples)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")


def table(rows: list[JSON], columns: list[tuple[str, str]]) -> str:
    """Rows as aligned columns under their titles."""
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


def resolve_version(api: ApiClient, ref: str) -> JSON:
    """The version named by `MODEL@VERSION` or numeric id, looked up through the versions list
    while the server's version routes take numeric ids only; every command names versions
    through here, so a server answering refs in paths is one change away."""
    return api.version(ref)
