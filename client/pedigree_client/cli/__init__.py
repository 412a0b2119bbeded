"""`pedigree`: the command-line client of the Pedigree REST API.

Exit codes: 0 success, 1 a check failed (e.g. `pedigree gate`), 2 usage or connection error.
"""

import argparse
import sys

from pedigree_client.api import ApiClient
from pedigree_client.cli import (
    artefacts,
    catalogue,
    datasets,
    evaluate,
    gate,
    licensing,
    lineage,
    register,
)
from pedigree_client.cli.common import HelpFormatter
from pedigree_client.errors import CliError

# Each command module adds its sub-commands to the parser.
COMMAND_MODULES = [catalogue, datasets, gate, lineage, register, artefacts, licensing, evaluate]

EXAMPLES = """\
examples:
  export PEDIGREE_URL=https://pedigree.example.com PEDIGREE_TOKEN=…
  pedigree datasets register train.csv --name acme/tickets --version 2024-06 --licence CC-BY-4.0
  pedigree register ./out --model acme/intent --version 1.1 --base acme/intent@1.0 --method lora
  pedigree evaluate acme/intent@1.1
  pedigree gate acme/intent@1.1 --stage production --junit report.xml"""


def build_parser() -> argparse.ArgumentParser:
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
    for module in COMMAND_MODULES:
        module.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
