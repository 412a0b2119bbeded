"""`pedigree licence-check` (exit 0 pass, 1 fail, 2 error) and `pedigree export`."""

import argparse
import json
import sys
from pathlib import Path

import requests

from pedigree_client.api import JSON, ApiClient
from pedigree_client.cli.common import Commands, add_command, resolve_version
from pedigree_client.errors import CliError, error_from_response

STAGES = ["development", "staging", "production"]
USES = ["commercial", "internal", "research"]
DISTRIBUTIONS = ["hosted", "shipped_weights"]
EXPORT_FORMATS = ["spdx-2.3", "spdx-3.0", "model-card"]
MARKS = {"error": "ERROR", "warning": "warn ", "hint": "hint "}


def licence_summary(check: JSON) -> str:
    verdict = "PASS" if check["passed"] else "FAIL"
    counts = check["counts"]
    lines = [
        f"{verdict}: licence check of {check['version']} for {check['use']} use, "
        f"{check['distribution']}, {check['stage']} "
        f"(policy {check['policy']['name']} revision {check['policy']['revision']})",
        f"  licence: {check['licence']['chosen'] or 'none declared'}; "
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['hint']} hint(s), "
        f"{counts['waived']} waived",
    ]
    lines += [f"  problem: {problem}" for problem in check["problems"]]
    lines += [f"  choice: {choice['reason']}" for choice in check["choices"]]
    for violation in check["violations"]:
        mark = "WAIVD" if violation["waived"] else MARKS[violation["severity"]]
        lines.append(f"  [{mark}] {violation['rule']}: {violation['message']}")
        lines.append(f"          path: {violation['path']}")
        lines.append(f"          fix:  {violation['how_to_fix']}")
        if violation["waiver"]:
            waiver = violation["waiver"]
            lines.append(
                f"          waived by {waiver['granted_by']} (approved by {waiver['approver']}) "
                f"until {waiver['expires_at'][:10]}: {waiver['reason']}"
            )
    return "\n".join(lines)


def licence_check(client: ApiClient, args: argparse.Namespace) -> int:
    version = resolve_version(client, args.ref)
    check = client.get(
        f"versions/{version['id']}/licence-check/",
        stage=args.stage,
        use=args.use,
        distribution=args.distribution,
    )
    if args.json:
        print(json.dumps(check, indent=2))
    else:
        print(licence_summary(check))
    return 0 if check["passed"] else 1


def _fetch_text(client: ApiClient, path: str) -> bytes:
    try:
        response = client.session.get(
            client.url(path), headers={"Accept": "*/*"}, timeout=client.timeout
        )
    except requests.RequestException:
        raise CliError(
            f"Cannot reach Pedigree at {client.base_url}; is the server running, and is "
            "PEDIGREE_URL right?"
        ) from None
    if response.status_code >= 400:
        raise error_from_response(response)
    return response.content


def export(client: ApiClient, args: argparse.Namespace) -> int:
    version = resolve_version(client, args.ref)
    data = _fetch_text(client, f"versions/{version['id']}/export/{args.format}/")
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data if data.endswith(b"\n") else data + b"\n")
        return 0
    try:
        Path(args.output).write_bytes(data)
    except OSError as error:
        raise CliError(f"cannot write {args.output}: {error.strerror}") from None
    print(f"Wrote {args.format} export of {version['ref']} to {args.output}.", file=sys.stderr)
    return 0


def add_commands(commands: Commands) -> None:
    parser = add_command(
        commands,
        "licence-check",
        examples=[
            "pedigree licence-check acme/support-intent@v3",
            "pedigree licence-check acme/support-intent@v3 --use research --stage staging --json",
        ],
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument("--use", default="commercial", choices=USES, help="the intended use")
    parser.add_argument(
        "--stage", default="production", choices=STAGES, help="the stage the policy applies to"
    )
    parser.add_argument(
        "--distribution",
        default="hosted",
        choices=DISTRIBUTIONS,
        help="served by you, or weights handed to others",
    )
    parser.add_argument("--json", action="store_true", help="print the full answer as JSON")
    parser.set_defaults(handler=licence_check)

    parser = add_command(
        commands,
        "export",
        examples=[
            "pedigree export acme/support-intent@v3 --format spdx-2.3 -o sbom.spdx.json",
            "pedigree export acme/support-intent@v3 --format model-card > MODEL_CARD.md",
        ],
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    parser.set_defaults(handler=export)
