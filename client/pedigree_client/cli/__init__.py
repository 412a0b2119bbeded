"""`pedigree`: the command-line client of the Pedigree REST API.

Exit codes: 0 success, 1 a check failed (e.g. `pedigree gate`), 2 usage or connection error.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence

from pedigree_client.api import ApiClient
from pedigree_client.cli.common import COMMANDS, HelpFormatter
from pedigree_client.errors import CliError

EXAMPLES = """\
examples:
  export PEDIGREE_URL=https://pedigree.example.com PEDIGREE_TOKEN=…
  pedigree datasets register train.csv --name acme/tickets --version 2024-06 --licence CC-BY-4.0
  pedigree register ./out --model acme/intent --version 1.1 --base acme/intent@1.0 --method lora
  pedigree evaluate acme/intent@1.1
  pedigree gate acme/intent@1.1 --stage production --junit report.xml"""


def _command_named(argv: Sequence[str]) -> str | None:
    """The command in `argv`: its first word that is not an option or an option's value."""
    words = iter(argv)
    for word in words:
        if word in ("--url", "--token"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of `pedigree`. Only the module of the command named in `argv` is imported
    and adds its arguments; the other commands are listed with their help. Without `argv`,
    every command is complete."""
    parser = argparse.ArgumentParser(
        prog="pedigree",
        description="Pedigree model registry client. Set PEDIGREE_URL and PEDIGREE_TOKEN. "
        "Exit codes: 0 success, 1 a check failed, 2 usage or connection error.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--url", help="server URL (default: $PEDIGREE_URL or http://127.0.0.1:8000)"
    )
    parser.add_argument("--token", help="API token (default: $PEDIGREE_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = None if argv is None else COMMANDS.get(_command_named(argv) or "", ("", ""))[0]
    for name, (module, help) in COMMANDS.items():
        if name in commands.choices:  # added with an earlier command of its module
            continue
        if named is None or module == named:
            importlib.import_module(f"pedigree_client.cli.{module}").add_commands(commands)
        else:
            commands.add_parser(name, help=help)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        # Local commands (`artefacts inspect`) run without a server or a token.
        client = ApiClient(args.url, args.token) if getattr(args, "needs_server", True) else None
        return int(args.handler(client, args) or 0)
    except CliError as error:
        print(f"pedigree: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("pedigree: interrupted", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
