"""`pedigree evaluate VERSION [--suite S ...] [--no-wait]`, `pedigree evaluation RUN [--wait]`
and `pedigree suites list`: request evaluations in one request the server answers at once (by
default on every suite attached to the model), poll the queued runs until they finish, and
print overall, per-group and fairness results with every limit they break.

Exit codes: 0 every evaluation succeeded and meets its suite's limits (or was queued, with
--no-wait); 1 one failed, was cancelled, or breaks a limit; 2 usage or connection errors, or
--timeout ran out while one was still running.
"""

import argparse
import json
import sys
import time

from pedigree_client.api import JSON, ApiClient, version_path
from pedigree_client.cli.common import Commands, add_command, add_group, table
from pedigree_client.client import follow_evaluation
from pedigree_client.errors import CliError, InvalidInput, NotFound
from pedigree_client.results import FINISHED_STATUSES

# Long enough for an evaluation on a CPU worker behind a short queue; CI jobs can raise it.
DEFAULT_TIMEOUT = 1800.0


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


def render(run: JSON) -> str:
    """A run as text: what ran where, overall metrics, each attribute's groups and gaps, and
    the limits it breaks."""
    lines = [
        f"Evaluation #{run['id']} of {run['version']} on suite {run['suite']}: {run['status']}"
    ]
    if run["status"] in ("failed", "cancelled"):
        lines.append(f"  {run['error']}")
        return "\n".join(lines)
    if run["status"] != "succeeded":
        progress = run["progress"]
        if progress["total"]:
            lines.append(f"  {progress['done']} of {progress['total']} samples")
        return "\n".join(lines)
    cuda = f", CUDA {run['cuda_version']}" if run["cuda_version"] else ""
    lines.append(
        f"  ran on {run['device']} (torch {run['torch_version']}{cuda}, transformers "
        f"{run['transformers_version']}): {run['samples']} samples in {run['duration_s']:.1f} s, "
        f"{run['samples_per_second']:.1f} samples/s"
    )
    lines.append(
        f"  weights sha256 {run['artefact_digest'][:12]}…, dataset sha256 "
        f"{run['dataset_sha256'][:12]}…"
        + (f", base {run['base_version']}" if run["base_version"] else "")
    )
    result = run["result"]
    lines.append(
        "  overall: "
        + ", ".join(f"{k} {_number(v)}" for k, v in result["overall"].items() if k != "n")
    )
    positive = result["positive_label"]
    for attribute, groups in sorted(result["groups"].items()):
        lines.append(f"  by {attribute}:")
        for group, row in sorted(groups.items()):
            selected = (
                f", selected as {positive} {_number(row['selection_rate'].get(positive))}"
                if positive
                else ""
            )
            lines.append(
                f"    {group:<16} n={row['n']:<6} accuracy {_number(row['accuracy'])}{selected}"
            )
        fairness = result["fairness"].get(attribute, {})
        gaps = [
            f"{metric} {_number(fairness[metric])}"
            for metric in (
                "accuracy_gap",
                "demographic_parity_difference",
                "demographic_parity_ratio",
                "equalized_odds_difference",
            )
            if metric in fairness
        ]
        if gaps:
            lines.append(f"    {', '.join(gaps)}")
    for comparison in result["comparison"]:
        if comparison["parent_run"]:
            deltas = ", ".join(f"{k} {v:+.4f}" for k, v in comparison["deltas"].items())
            lines.append(f"  vs parent {comparison['parent']}: {deltas}")
    for finding in run["findings"]:
        lines.append(f"  FAIL {finding['check']}: {finding['message']}")
    if not run["findings"]:
        lines.append("  meets every quality and fairness limit of the suite")
    return "\n".join(lines)


def _finish(client: ApiClient, runs: list[JSON], args: argparse.Namespace, *, many: bool) -> int:
    """Follow the runs (all under one --timeout), print them, and judge them together."""
    if args.wait:
        deadline = time.monotonic() + args.timeout
        followed = []
        for run in runs:
            try:
                followed.append(
                    follow_evaluation(client, run, interval=args.interval, deadline=deadline)
                )
            except TimeoutError as error:
                raise CliError(
                    f"{error} after the --timeout; follow it with "
                    f"`pedigree evaluation {run['id']} --wait`."
                ) from None
        runs = followed
    if args.json:
        print(json.dumps(runs if many else runs[0], indent=2, sort_keys=True))
    else:
        print("\n".join(render(run) for run in runs))
    broken = [run for run in runs if run["status"] in ("failed", "cancelled") or run["findings"]]
    return 1 if broken else 0


def evaluate(client: ApiClient, args: argparse.Namespace) -> int:
    payload: JSON = {"device": args.device}
    if args.suite:
        payload["suites"] = args.suite
    try:
        answer = client.post(version_path(args.ref, "evaluations/"), payload)
    except NotFound:
        raise CliError(f"No version {args.ref} that you can see.") from None
    except InvalidInput as error:
        if args.suite or "suites" not in error.fields:
            raise
        raise CliError(
            f"{error.fields['suites'][0]} `pedigree suites list` shows the suites; name them "
            "with --suite."
        ) from None
    for run in answer["runs"]:
        if not args.json and run["status"] not in FINISHED_STATUSES:
            again = "" if run["created"] else ", requested before"
            print(
                f"Evaluation #{run['id']} of {run['version']} on {run['suite']} is "
                f"{run['status']} (queue {run['queue']}{again}).",
                file=sys.stderr,
            )
    return _finish(client, answer["runs"], args, many=len(args.suite) != 1)


def evaluation_show(client: ApiClient, args: argparse.Namespace) -> int:
    return _finish(client, [client.get(f"evaluation-runs/{args.run}/")], args, many=False)


def suites_list(client: ApiClient, args: argparse.Namespace) -> int:
    suites = client.list_all("evaluation-suites/", model=args.model, team=args.team)
    if args.json:
        print(json.dumps(suites, indent=2))
        return 0
    if not suites:
        print("No evaluation suites you can see" + (f" for {args.model}." if args.model else "."))
        return 0
    rows = [suite | {"models": ", ".join(suite["models"]) or "(none attached)"} for suite in suites]
    print(
        table(
            rows,
            [
                ("id", "ID"),
                ("name", "NAME"),
                ("task", "TASK"),
                ("dataset_version", "DATASET"),
                ("team", "TEAM"),
                ("models", "MODELS"),
            ],
        )
    )
    return 0


def _follow_options(parser: argparse.ArgumentParser, *, wait: bool) -> None:
    parser.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=wait,
        help="follow the run until it finishes, showing its progress",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="with --wait: give up (exit 2) after this long; the run carries on",
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="seconds between polls"
    )
    parser.add_argument("--json", action="store_true", help="print the run as JSON")


def add_commands(commands: Commands) -> None:
    parser = add_command(
        commands,
        "evaluate",
        description="Request an evaluation of the version on each --suite (default: every "
        "suite attached to its model) and follow the runs until they finish. Exit 0 when "
        "every run succeeded within its suite's limits (or, with --no-wait, was queued), 1 "
        "when one failed or breaks a limit, 2 on errors or when --timeout runs out.",
        examples=[
            "pedigree evaluate acme/support-intent@v2",
            "pedigree evaluate acme/support-intent@v2 --suite tickets-fairness --device cuda",
            "pedigree evaluate acme/support-intent@v2 --no-wait --json",
        ],
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="SUITE",
        help="an evaluation suite's name or id (repeatable; default: the model's suites); "
        "with exactly one, --json prints the run, otherwise a list of runs",
    )
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="cuda sends it to the GPU workers",
    )
    _follow_options(parser, wait=True)
    parser.set_defaults(handler=evaluate)

    show = add_command(
        commands,
        "evaluation",
        examples=["pedigree evaluation 12", "pedigree evaluation 12 --wait --timeout 600"],
    )
    show.add_argument("run", type=int, metavar="RUN", help="the run's id")
    _follow_options(show, wait=False)
    show.set_defaults(handler=evaluation_show)

    suites = add_group(
        commands,
        "suites",
        examples=["pedigree suites list --model acme/support-intent"],
    )
    parser = add_command(
        suites,
        "list",
        help="list the evaluation suites you can see",
        examples=[
            "pedigree suites list",
            "pedigree suites list --model acme/support-intent --json",
        ],
    )
    parser.add_argument("--model", help="only the suites attached to this model")
    parser.add_argument("--team", metavar="SLUG", help="only this team's suites")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=suites_list)
