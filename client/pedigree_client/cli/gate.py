"""`pedigree gate` (the CI release gate), `pedigree promote`, `pedigree approve`,
`pedigree compliance`."""

import argparse
import json
import sys
from pathlib import Path
from typing import cast

from pedigree_client.api import JSON, ApiClient
from pedigree_client.cli.common import Commands, add_command, resolve_version
from pedigree_client.errors import CliError, PromotionRefused
from pedigree_client.output import GREEN, RED, paint, wants_colour
from pedigree_client.results import ComplianceStatus, from_json

STAGES = ["staging", "production", "archived"]
USES = ["commercial", "internal", "research"]
DISTRIBUTIONS = ["hosted", "shipped_weights"]


def governance_url(client: ApiClient, version_id: int) -> str:
    """The version's governance page in the admin: gate, approvals, waivers, promotion."""
    return f"{client.base_url}/admin/registry/modelversion/{version_id}/governance/"


def _informational(check: JSON, stage: str) -> str:
    outcome = "passed" if check["passed"] else "failed"
    return f"informational, {outcome}: not required for {stage} by the stage policy"


def junit_xml(evaluation: JSON) -> bytes:
    """One test case per check; a failing required check is a failure, a waived one is noted,
    an informational (not required) one is skipped. The governance page is a property of the
    suite and ends each failure's text."""
    from xml.etree import ElementTree as ET  # loaded for --junit only

    checks = evaluation["checks"]
    stage = evaluation["stage"]
    link = evaluation["governance_url"]
    failed = [c for c in checks if c["required"] and not c["passed"] and not c["waiver"]]
    suite = ET.Element(
        "testsuite",
        name=f"pedigree gate {evaluation['version']} → {stage}",
        tests=str(len(checks)),
        failures=str(len(failed)),
        errors="0",
        skipped=str(sum(1 for c in checks if not c["required"])),
        # Report viewers (dorny/test-reporter, GitLab) read a time on every suite and case.
        time="0",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="governance_url", value=link)
    for check in checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"pedigree.gate.{stage}", name=check["check"], time="0"
        )
        reasons = "\n".join(check["reasons"])
        if check in failed:
            ET.SubElement(
                case, "failure", message=reasons[:500] or "failed"
            ).text = f"{reasons}\nReview it on the governance page: {link}".lstrip()
        elif not check["required"]:
            ET.SubElement(case, "skipped", message=_informational(check, stage)).text = reasons
        elif check["waiver"]:
            waiver = check["waiver"]
            ET.SubElement(
                case, "system-out"
            ).text = (
                f"waived by {waiver['granted_by']} until {waiver['expires_at']}: {waiver['reason']}"
            )
    # Any encoding but "unicode" gives bytes; typeshed cannot tell from a plain str.
    return cast(bytes, ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def summary(evaluation: JSON, *, colour: bool = False) -> str:
    """Each check with its reasons; informational checks say so. Green and red on request."""
    stage = evaluation["stage"]
    verdict, verdict_colour = ("PASS", GREEN) if evaluation["passed"] else ("FAIL", RED)
    lines = [
        f"{paint(verdict, verdict_colour, enabled=colour)}: {evaluation['version']} → {stage} "
        f"(use {evaluation['use']}, {evaluation['distribution']}; "
        f"digest {evaluation['artefact_digest'][:12]}…)"
    ]
    for check in evaluation["checks"]:
        if check["passed"]:
            mark = paint("ok  ", GREEN, enabled=colour)
        elif check["waiver"]:
            mark = "WAIV"
        elif check["required"]:
            mark = paint("FAIL", RED, enabled=colour)
        else:
            mark = "info"
        note = "" if check["required"] else f" ({_informational(check, stage)})"
        lines.append(f"  [{mark}] {check['check']}{note}")
        lines.extend(f"         - {reason}" for reason in check["reasons"])
        if check["waiver"] and not check["passed"]:
            waiver = check["waiver"]
            lines.append(f"         waived by {waiver['granted_by']}: {waiver['reason']}")
    lines.append(f"Governance page: {evaluation['governance_url']}")
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
    version = resolve_version(client, args.ref)
    evaluation = client.get(
        f"versions/{version['id']}/gate/",
        stage=args.stage,
        use=args.use,
        distribution=args.distribution,
    )
    evaluation["governance_url"] = governance_url(client, version["id"])
    if args.junit:
        _write(args.junit, junit_xml(evaluation))
    if args.json:
        _write(args.json, json.dumps(evaluation, indent=2).encode())
    if args.json != "-":
        print(summary(evaluation, colour=wants_colour(sys.stdout)))
    return 0 if evaluation["passed"] else 1


def promote(client: ApiClient, args: argparse.Namespace) -> int:
    version = resolve_version(client, args.ref)
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
        print(f"Governance page: {governance_url(client, version['id'])}")
        return 1
    print(f"Promoted {version['ref']} to {args.stage} (decision #{body['id']}).")
    return 0


def approve(client: ApiClient, args: argparse.Namespace) -> int:
    version = resolve_version(client, args.ref)
    payload = {
        "stage": args.stage,
        "decision": args.decision,
        "comment": args.comment,
        "attestations": args.attest,
    }
    approval = client.post(f"versions/{version['id']}/approvals/", payload)
    print(
        f"{approval['decision'].capitalize()}d {version['ref']} for {approval['stage']} "
        f"(digest {approval['artefact_digest'][:12]}…, expires {approval['expires_at'][:10]})."
    )
    return 0


def compliance(client: ApiClient, args: argparse.Namespace) -> int:
    """Exit 0 while the version passes the gate of the stage it is in, 1 when it is out of
    compliance or held."""
    version = resolve_version(client, args.ref)
    status = client.get(f"versions/{version['id']}/compliance/")
    compliant = from_json(ComplianceStatus, status).compliant
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if compliant else 1
    state = (status.get("state") or "not gated").replace("_", " ")
    verdict = paint(state.upper(), GREEN if compliant else RED, enabled=wants_colour(sys.stdout))
    print(f"{verdict}: {version['ref']} in {status['stage']}")
    for row in status.get("failing") or []:
        for reason in row["reasons"]:
            print(f"  [FAIL] {row['check']} ({row['stage']}): {reason}")
    if status.get("action"):
        print(f"What to do: {status['action']}")
    print(f"Governance page: {governance_url(client, version['id'])}")
    return 0 if compliant else 1


def _gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument("--stage", required=True, choices=STAGES, help="the stage to enter")
    parser.add_argument("--use", default="commercial", choices=USES, help="the intended use")
    parser.add_argument(
        "--distribution",
        default="hosted",
        choices=DISTRIBUTIONS,
        help="served by you, or weights handed to others",
    )


def add_commands(commands: Commands) -> None:
    parser = add_command(
        commands,
        "gate",
        description="Ask the release gate whether the version may enter the stage: every "
        "check with its reasons (informational ones marked), and a link to the version's "
        "governance page. Changes nothing.",
        examples=[
            "pedigree gate acme/support-intent@v2 --stage production --junit report.xml",
            "pedigree gate acme/support-intent@v2 --stage staging --use internal --json -",
        ],
    )
    _gate_options(parser)
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per check")
    parser.add_argument(
        "--json", metavar="FILE", help="write the full answer as JSON ('-': stdout)"
    )
    parser.set_defaults(handler=gate)

    parser = add_command(
        commands,
        "promote",
        examples=[
            "pedigree promote acme/support-intent@v2 --stage production "
            '--justification "2026.11 release" --replace-production',
        ],
    )
    _gate_options(parser)
    parser.add_argument("--justification", default="")
    parser.add_argument(
        "--replace-production",
        action="store_true",
        help="archive the model's current production version",
    )
    parser.set_defaults(handler=promote)

    parser = add_command(
        commands,
        "approve",
        examples=[
            'pedigree approve acme/support-intent@v2 --stage production --comment "reviewed"',
            "pedigree approve acme/support-intent@v2 --stage production --decision reject "
            '--comment "fairness evidence missing"',
            "pedigree approve acme/Llama-3.1-support@v1 --stage production "
            '--attest "LicenseRef-Llama-3.1 user_threshold"',
        ],
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument("--stage", required=True, choices=["staging", "production"])
    parser.add_argument(
        "--decision", default="approve", choices=["approve", "reject"], help="your decision"
    )
    parser.add_argument("--comment", default="")
    parser.add_argument(
        "--attest",
        action="append",
        default=[],
        metavar="ATTESTATION",
        help="a fact the licence check asks the releasing team to attest, as it names it "
        "(production approvals; repeatable)",
    )
    parser.set_defaults(handler=approve)

    parser = add_command(
        commands,
        "compliance",
        description="The version's current compliance, recomputed by the server: whether it "
        "still passes the gate of the stage it is in (else out of compliance) and the next one "
        "it wants, each failing check with its reasons, and what to do. Exit 0 while it passes "
        "its own stage's gate, 1 when out of compliance or held, 2 on errors.",
        examples=[
            "pedigree compliance acme/support-intent@v2",
            "pedigree compliance acme/support-intent@v2 --json",
        ],
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument("--json", action="store_true", help="print the full answer as JSON")
    parser.set_defaults(handler=compliance)
