"""`pedigree evaluate VERSION --suite S [--device auto|cpu|cuda] [--wait]` and
`pedigree evaluation RUN [--wait]`: request an evaluation, follow it with a progress bar, and
print overall, per-group and fairness results with every limit they break.

Exit codes: 0 the evaluation succeeded and meets its suite's limits (or was queued without
--wait); 1 it failed, was cancelled, or breaks a limit; 2 usage or connection errors, or
--timeout ran out while it was still running.
"""

import argparse
import json
import sys
import time

from tqdm import tqdm

from pedigree_client.api import JSON, ApiClient
from pedigree_client.errors import CliError

FINISHED = ("succeeded", "failed", "cancelled")


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
            small = " (small: not compared)" if row["small"] else ""
            lines.append(
                f"    {group:<16} n={row['n']:<6} accuracy {_number(row['accuracy'])}"
                f"{selected}{small}"
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


def _follow(client: ApiClient, run: JSON, *, interval: float, timeout: float | None) -> JSON:
    """Poll the run until it finishes, showing its progress (bar hidden when not a terminal)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with tqdm(
        total=run["progress"]["total"] or None,
        desc=f"evaluation #{run['id']}",
        unit="sample",
        file=sys.stderr,
        disable=None,
    ) as bar:
        while True:
            progress = run["progress"]
            if progress["total"] and bar.total != progress["total"]:
                bar.reset(total=progress["total"])
            bar.n = progress["done"]
            bar.set_postfix_str(run["status"])
            if run["status"] in FINISHED:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError(
                    f"Evaluation #{run['id']} is still {run['status']} after {timeout:g} s; "
                    f"follow it with `pedigree evaluation {run['id']} --wait`."
                )
            time.sleep(interval)
            run = client.get(f"evaluation-runs/{run['id']}/")


def _finish(client: ApiClient, run: JSON, args: argparse.Namespace) -> int:
    if args.wait:
        run = _follow(client, run, interval=args.interval, timeout=args.timeout)
    if args.json:
        print(json.dumps(run, indent=2, sort_keys=True))
    else:
        print(render(run))
    if run["status"] in ("failed", "cancelled") or run["findings"]:
        return 1
    return 0


def evaluate(client: ApiClient, args: argparse.Namespace) -> int:
    run = client.post(
        "evaluation-runs/", {"version": args.ref, "suite": args.suite, "device": args.device}
    )
    if not args.json and run["status"] not in FINISHED:
        print(
            f"Evaluation #{run['id']} of {run['version']} on {run['suite']} is {run['status']} "
            f"(queue {run['queue']}).",
            file=sys.stderr,
        )
    return _finish(client, run, args)


def evaluation_show(client: ApiClient, args: argparse.Namespace) -> int:
    return _finish(client, client.get(f"evaluation-runs/{args.run}/"), args)


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="follow it until it finishes")
    parser.add_argument(
        "--timeout", type=float, help="with --wait: give up after this many seconds"
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, help="with --wait: seconds between polls"
    )
    parser.add_argument("--json", action="store_true", help="print the run as JSON")


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "evaluate", help="evaluate a version on an evaluation suite (quality and fairness)"
    )
    parser.add_argument("ref", metavar="VERSION", help="MODEL@VERSION or id")
    parser.add_argument("--suite", required=True, help="the evaluation suite's name or id")
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="cuda sends it to the GPU workers (default: auto)",
    )
    _follow_options(parser)
    parser.set_defaults(handler=evaluate)

    show = commands.add_parser("evaluation", help="show an evaluation run and its results")
    show.add_argument("run", type=int, metavar="RUN", help="the run's id")
    _follow_options(show)
    show.set_defaults(handler=evaluation_show)
