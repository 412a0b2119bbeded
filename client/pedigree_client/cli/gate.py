"""`pedigree gate` (the CI release gate), `pedigree promote`, `pedigree approve`."""

import argparse
import json
import sys
from pathlib import Path
from typing import cast
from xml.etree import ElementTree as ET

from pedigree_client.api import JSON, ApiClient
from pedigree_client.errors import CliError, PromotionRefused

STAGES = ["staging", "production", "archived"]
USES = ["commercial", "internal", "research"]
DISTRIBUTIONS = ["hosted", "shipped_weights"]


def junit_xml(evaluation: JSON) -> bytes:
    """One test case per check; a failing required check is a failure, a waived one is noted."""
    checks = evaluation["checks"]
    failed = [c for c in checks if c["required"] and not c["passed"] and not c["waiver"]]
    suite = ET.Element(
        "testsuite",
        name=f"pedigree gate {evaluation['version']} → {evaluation['stage']}",
        tests=str(len(checks)),
        failures=str(len(failed)),
        errors="0",
        skipped=str(sum(1 for c in checks if not c["required"])),
    )
    for check in checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"pedigree.gate.{evaluation['stage']}", name=check["check"]
        )
        reasons = "\n".join(check["reasons"])
        if check in failed:
            ET.SubElement(case, "failure", message=reasons[:500] or "failed").text = reasons
        elif not check["required"]:
            ET.SubElement(
                case, "skipped", message="not required by the stage policy"
            ).text = reasons
        elif check["waiver"]:
            waiver = check["waiver"]
            ET.SubElement(
                case, "system-out"
            ).text = (
                f"waived by {waiver['granted_by']} until {waiver['expires_at']}: {waiver['reason']}"
            )
    # Any encoding but "unicode" gives bytes; typeshed cannot tell from a plain str.
    return cast(bytes, ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def summary(evaluation: JSON) -> str:
    verdict = "PASS" if evaluation["passed"] else "FAIL"
    lines = [
        f"{verdict}: {evaluation['version']} → {evaluation['stage']} "
        f"(use {evaluation['use']}, {evaluation['distribution']}; "
        f"digest {evaluation['artefact_digest'][:12]}…)"
    ]
    for check in evaluation["checks"]:
        if check["passed"]:
            mark = "ok  "
        elif check["waiver"]:
            mark = "WAIV"
        elif check["required"]:
            mark = "FAIL"
        else:
            mark = "info"
        lines.append(f"  [{mark}] {check['check']}")
        lines.extend(f"         - {reason}" for reason in check["reasons"])
        if check["waiver"] and not check["passed"]:
            waiver = check["waiver"]
            lines.append(f"         waived by {waiver['granted_by']}: {waiver['reason']}")
    return "\n".join(lines)


def _write(target: str, data: bytes) -> None:
    if target == "-":
        sys.stdout.buffer.write(data + b"\n")
        return
    try:
        Path(target).write_bytes(data)
    except OSError as error:
        raise CliError(f"cannot write {target}: {error.strerror}") from None


def gate(client: ApiClient, args: argparse.Namespace) -> int:
    version = client.version(args.ref)
    evaluation = client.get(
        f"versions/{version['id']}/gate/",
        stage=args.stage,
        use=args.use,
        distribution=args.distribution,
    )
    if args.junit:
        _write(args.junit, junit_xml(evaluation))
    if args.json:
        _write(args.json, json.dumps(evaluation, indent=2).encode())
    if args.json != "-":
        print(summary(evaluation))
    return 0 if evaluation["passed"] else 1


def promote(client: ApiClient, args: argparse.Namespace) -> int:
    version = client.version(args.ref)
    payload = {
        "stage": args.stage,
        "use": args.use,
        "distribution": args.distribution,
        "justification": args.justification,
        "replace_production": args.replace_production,
    }
    try:
        body = client.post(f"versions/{version['id']}/promote/", payload)
    except PromotionRefused as refusal:
        decision = refusal.decision
        print(f"Refused: {version['ref']} → {args.stage} (decision #{decision.id})")
        for check in decision.results:
            if check.blocking:
                for reason in check.reasons:
                    print(f"  [FAIL] {check.check}: {reason}")
        return 1
    print(f"Promoted {version['ref']} to {args.stage} (decision #{body['id']}).")
    return 0


def approve(client: ApiClient, args: argparse.Namespace) -> int:
    version = client.version(args.ref)
    payload = {"stage": args.stage, "decision": args.decision, "comment": args.comment}
    approval = client.post(f"versions/{version['id']}/approvals/", payload)
    print(
        f"{approval['decision'].capitalize()}d {version['ref']} for {approval['stage']} "
        f"(digest {approval['artefact_digest'][:12]}…, expires {approval['expires_at'][:10]})."
    )
    return 0


def _gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", metavar="MODEL@VERSION")
    parser.add_argument("--stage", required=True, choices=STAGES)
    parser.add_argument("--use", default="commercial", choices=USES)
    parser.add_argument("--distribution", default="hosted", choices=DISTRIBUTIONS)


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "gate", help="may this version enter a stage? exit 0 pass, 1 fail, 2 error"
    )
    _gate_options(parser)
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per check")
    parser.add_argument(
        "--json", metavar="FILE", help="write the full answer as JSON ('-': stdout)"
    )
    parser.set_defaults(handler=gate)

    parser = commands.add_parser("promote", help="promote a version (runs the gate)")
    _gate_options(parser)
    parser.add_argument("--justification", default="")
    parser.add_argument(
        "--replace-production",
        action="store_true",
        help="archive the model's current production version",
    )
    parser.set_defaults(handler=promote)

    parser = commands.add_parser("approve", help="approve or reject a version (compliance)")
    parser.add_argument("ref", metavar="MODEL@VERSION")
    parser.add_argument("--stage", required=True, choices=["staging", "production"])
    parser.add_argument("--decision", default="approve", choices=["approve", "reject"])
    parser.add_argument("--comment", default="")
    parser.set_defaults(handler=approve)
