"""`pedigree register PATH --model NAME --version V ...`: upload the artefact, then register the
version with its parents, training run and datasets in ONE call (`POST /registrations/`,
validated first by a dry run where the server offers one, so nothing is uploaded for a
registration it would refuse)."""

import argparse
import json
from pathlib import Path

from pedigree_client.api import JSON, ApiClient
from pedigree_client.cli.common import RISK_TIERS, Commands, add_command, text_or_file
from pedigree_client.client import submit_registration
from pedigree_client.errors import CliError

RELATIONS = ["finetune", "adapter", "quantized", "merge", "distillation", "continued_pretraining"]
METHODS = [
    "full_finetune",
    "partial_finetune",
    "lora",
    "feature_extraction",
    "quantization",
    "merge",
    "distillation",
    "continued_pretraining",
]
ROLES = ["train", "validation", "test"]


def _json_argument(value: str, what: str) -> JSON:
    """JSON text, or @FILE holding JSON."""
    source = value
    if value.startswith("@"):
        try:
            source = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise CliError(f"Cannot read {what} from {value[1:]}: {error.strerror}.") from None
    try:
        parsed = json.loads(source)
    except json.JSONDecodeError as error:
        raise CliError(f"{what} is not valid JSON: {error.msg} (line {error.lineno}).") from None
    if not isinstance(parsed, dict):
        raise CliError(f"{what} must be a JSON object, e.g. '{{\"learning_rate\": 2e-5}}'.")
    return parsed


def _pairs(values: list[str], separator: str, what: str, example: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        left, sep, right = (
            value.rpartition(separator) if separator == ":" else value.partition(separator)
        )
        if not sep or not left or not right:
            raise CliError(f"'{value}' is not a valid {what}; write it as {example}.")
        pairs.append((left, right))
    return pairs


def _parents(args: argparse.Namespace) -> list[JSON]:
    parents = []
    if args.base:
        parents.append({"version": args.base, "relation": args.relation})
    for ref, relation in _pairs(args.parent, ":", "--parent", "MODEL@VERSION:RELATION"):
        if relation not in RELATIONS:
            raise CliError(f"Unknown relation '{relation}'; use one of: {', '.join(RELATIONS)}.")
        parents.append({"version": ref, "relation": relation})
    return parents


def _training_run(args: argparse.Namespace) -> JSON | None:
    if not args.method:
        if args.hyperparameters or args.dataset:
            raise CliError("Name the training --method for these hyperparameters and datasets.")
        return None
    run: JSON = {"method": args.method}
    if args.hyperparameters:
        run["hyperparameters"] = _json_argument(args.hyperparameters, "--hyperparameters")
    datasets = []
    for role, ref in _pairs(args.dataset, "=", "--dataset", "ROLE=DATASET@VERSION"):
        if role not in ROLES:
            raise CliError(f"Unknown dataset role '{role}'; use one of: {', '.join(ROLES)}.")
        datasets.append({"dataset_version": ref, "role": role})
    if datasets:
        run["datasets"] = datasets
    frameworks = dict(_pairs(args.framework, "=", "--framework", "NAME=VERSION"))
    if frameworks:
        run["framework_versions"] = frameworks
    compute = {
        key: getattr(args, key)
        for key in ("device_kind", "device_count", "gpu_hours", "energy_kwh")
        if getattr(args, key) is not None
    }
    if compute:
        run["compute"] = compute
    for key in ("code_revision", "code_repository", "started_at", "finished_at", "run_by"):
        if getattr(args, key):
            run[key] = getattr(args, key)
    return run


def _artefact(args: argparse.Namespace) -> tuple[JSON, Path | None]:
    """Exactly one source: PATH (uploaded by `submit_registration`), --server-path or
    --digest."""
    given = [bool(args.path), bool(args.server_path), bool(args.digest)]
    if sum(given) != 1:
        raise CliError(
            "Give exactly one artefact: PATH to upload, --server-path of files inside the "
            "server's artefact roots, or --digest for weights Pedigree does not hold."
        )
    if args.server_path:
        return {"artefact_path": args.server_path}, None
    if args.digest:
        return {"artefact_digest": args.digest}, None
    return {}, Path(args.path)


def register(client: ApiClient, args: argparse.Namespace) -> int:
    payload: JSON = {"model": args.model, "version": args.version}
    if args.team:
        payload["create_model"] = {"team": args.team}
    parents = _parents(args)
    if parents:
        payload["parents"] = parents
    run = _training_run(args)
    if run:
        payload["training_run"] = run
    for key, field in (
        ("licence", "licence_declared"),
        ("risk_tier", "risk_tier"),
        ("intended_use", "intended_use"),
        ("known_limitations", "known_limitations"),
        ("description", "description"),
    ):
        if getattr(args, key):
            payload[field] = getattr(args, key)
    source, upload = _artefact(args)
    result = submit_registration(client, payload | source, upload=upload)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    version = result["version"]
    print(f"Registered {version['ref']} (id {version['id']}, sha256:{version['artefact_digest']})")
    for edge in result["parents"]:
        print(
            f"  {edge['relation']} of {edge['parent_ref']} "
            f"(pinned sha256:{edge['parent_digest'][:12]}…)"
        )
    if result["training_run"]:
        run = result["training_run"]
        data = ", ".join(f"{d['role']}={d['ref']}" for d in run["datasets"]) or "no datasets"
        print(f"  trained by {run['method']} ({data})")
    return 0


def add_commands(commands: Commands) -> None:
    parser = add_command(
        commands,
        "register",
        description="Upload PATH, then register it as MODEL@VERSION with its lineage in one "
        "atomic call: nothing is recorded if anything is wrong. Give the metadata the release "
        "gate asks for (--licence, --intended-use, --known-limitations, --risk-tier) here or "
        "later with `pedigree versions update`.",
        examples=[
            "pedigree register ./out/intent-v2 --model acme/support-intent --version v2 \\",
            "    --base acme/support-intent@v1 --relation finetune --method lora \\",
            "    --hyperparameters @hp.json --dataset train=acme/tickets@2024-06 \\",
            '    --licence Apache-2.0 --risk-tier limited --intended-use "Ticket routing" \\',
            '    --known-limitations "English tickets only"',
        ],
    )
    parser.add_argument("path", metavar="PATH", nargs="?", help="artefact file or folder")
    parser.add_argument("--model", required=True, help="model name, e.g. acme/support-intent")
    parser.add_argument("--version", required=True, help="version label, e.g. v1")
    parser.add_argument("--team", help="create the model in this team if it does not exist")
    parser.add_argument(
        "--server-path",
        metavar="PATH",
        help="register files already inside the server's artefact roots",
    )
    parser.add_argument("--digest", help="register weights Pedigree does not hold, by SHA-256")
    lineage = parser.add_argument_group("lineage")
    lineage.add_argument("--base", metavar="REF", help="the parent, as MODEL@VERSION")
    lineage.add_argument(
        "--relation",
        choices=RELATIONS,
        default="finetune",
        help="how the version was made from --base",
    )
    lineage.add_argument(
        "--parent",
        action="append",
        default=[],
        metavar="REF:RELATION",
        help="another parent (repeat for merges and distillations)",
    )
    run = parser.add_argument_group("training run")
    run.add_argument("--method", choices=METHODS)
    run.add_argument("--hyperparameters", metavar="JSON|@FILE")
    run.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="ROLE=REF",
        help="e.g. train=acme/tickets@v1 (repeatable)",
    )
    run.add_argument("--code-revision", metavar="SHA", help="full git commit of the code")
    run.add_argument("--code-repository", metavar="URL")
    run.add_argument(
        "--framework",
        action="append",
        default=[],
        metavar="NAME=VERSION",
        help="e.g. torch=2.4.0 (repeatable)",
    )
    run.add_argument("--device-kind", help="e.g. 'NVIDIA H100 80GB' or cpu")
    run.add_argument("--device-count", type=int)
    run.add_argument("--gpu-hours", type=float)
    run.add_argument("--energy-kwh", type=float)
    run.add_argument("--started-at", metavar="ISO-8601")
    run.add_argument("--finished-at", metavar="ISO-8601")
    run.add_argument("--run-by", metavar="USERNAME", help="who ran it (default: you)")
    meta = parser.add_argument_group("version")
    meta.add_argument("--licence", help="declared licence (SPDX expression)")
    meta.add_argument("--risk-tier", choices=RISK_TIERS)
    meta.add_argument("--intended-use", metavar="TEXT|@FILE", type=text_or_file)
    meta.add_argument("--known-limitations", metavar="TEXT|@FILE", type=text_or_file)
    meta.add_argument("--description", metavar="TEXT|@FILE", type=text_or_file)
    parser.add_argument("--json", action="store_true", help="print the JSON response")
    parser.set_defaults(handler=register)
