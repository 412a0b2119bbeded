"""Requesting, cancelling and sweeping evaluation runs (the broker's side of a run's life).

A request binds the run to the exact bytes it will judge (artefact digest, dataset SHA-256,
base digest) and enqueues its task after the commit; the sweep re-queues runs whose worker
vanished, publishes again the queued runs whose message the broker lost, or fails them after
too many attempts.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from evaluators.engine.names import KINDS_NEEDING_BASE, TABULAR_LINEAR
from evaluators.models import (
    ACTIVE_STATUSES,
    Device,
    EvaluationRun,
    EvaluationSuite,
    Queue,
    RunStatus,
    Task,
)
from evaluators.selectors import evaluation_base, evaluator_kind, suites_for, suites_visible_to
from evaluators.services.execution import run_failure_audit
from evaluators.sources import SourceError, locate_artefact, locate_dataset
from registry.audit import audit_record
from registry.errors import Conflict, FieldErrors, InvalidInput, PermissionRefused
from registry.models import ModelVersion
from registry.outbox import outbox_add, outbox_holds
from registry.retry import retry_transaction
from registry.selectors import is_compliance, is_team_member
from registry.types import Actor

MAX_SWEEP_BATCH = 100
EVALUATE_TASK = "evaluators.tasks.evaluate_run"


def _queue_for(device: str) -> str:
    """A run asking for CUDA goes to the GPU workers; `auto` and `cpu` to the CPU queue (a GPU
    host that also consumes `cpu` runs `auto` requests on its GPU)."""
    return Queue.GPU if device == Device.CUDA else Queue.CPU


def _require_run_permission(actor: Actor, version: ModelVersion, what: str) -> None:
    if not (is_compliance(actor) or is_team_member(actor, version.model.team_id)):
        raise PermissionRefused(
            f"Only members of team '{version.model.team.slug}' or compliance staff can {what} "
            f"evaluations of {version}."
        )


def _enqueue(run: EvaluationRun) -> None:
    """Send the run's task after the commit, through the outbox (it survives a broker outage)."""
    outbox_add(task=EVALUATE_TASK, args=[run.pk], queue=run.queue)


@retry_transaction
def run_request(
    *, actor: Actor, version: ModelVersion, suite: EvaluationSuite, device: str = Device.AUTO
) -> tuple[EvaluationRun, bool]:
    """Ask for an evaluation of `version`'s exact weights on `suite`; returns the run and whether
    it was created (an active run for the same version and suite is returned instead).

    The task is enqueued after the commit, on the `gpu` queue for `device="cuda"`.
    """
    _require_run_permission(actor, version, "request")
    if device not in Device.values:
        raise InvalidInput.for_field("device", f"Use one of: {', '.join(Device.values)}.")
    if (version.artefact_manifest or {}).get("format") == "gguf":
        raise InvalidInput.for_field(
            "version",
            f"{version} holds GGUF weights only (a llama.cpp quantization); Pedigree's "
            "evaluators run forward passes on safetensors weights and cannot evaluate GGUF. "
            "Evaluate the safetensors model it was quantized from (its parent) instead.",
            code="evaluation_unsupported_format",
        )
    try:
        locate_artefact(version)
    except SourceError as error:
        raise InvalidInput.for_field("version", str(error)) from None
    kind = evaluator_kind(version)
    if kind is None:
        raise InvalidInput.for_field(
            "version",
            f"Pedigree cannot tell how to evaluate {version}: its files hold no config.json "
            "(transformers classifier), adapter_config.json (PEFT adapter) or "
            "head_config.json + head.safetensors (embedding head) or tabular_config.json "
            "(tabular linear model).",
        )
    if (kind == TABULAR_LINEAR) != (suite.task == Task.TABULAR_CLASSIFICATION):
        raise InvalidInput.for_field(
            "suite",
            f"{version} is a {kind} model, which cannot be evaluated on {suite.name}, a "
            f"{suite.task} suite; pick a suite of its task.",
        )
    base, base_digest = None, ""
    try:
        if kind in KINDS_NEEDING_BASE:
            base, base_digest = evaluation_base(version)
            locate_artefact(base)
        locate_dataset(suite.dataset_version)
    except SourceError as error:
        raise InvalidInput.for_field("version", str(error)) from None
    if suite.dataset_version.sha256 != suite.dataset_sha256:
        raise InvalidInput.for_field(
            "suite",
            f"Dataset {suite.dataset_version} no longer has the SHA-256 pinned by suite "
            f"{suite.name}; define a new suite.",
        )
    try:
        with transaction.atomic():
            active = (
                EvaluationRun.objects.select_for_update()
                .filter(version=version, suite=suite, status__in=ACTIVE_STATUSES)
                .first()
            )
            if active is not None:
                return active, False
            run = EvaluationRun.objects.create(
                suite=suite,
                version=version,
                artefact_digest=version.artefact_digest,
                dataset_sha256=suite.dataset_sha256,
                evaluator=kind,
                base_version=base,
                base_digest=base_digest,
                device_requested=device,
                queue=_queue_for(device),
                requested_by=actor,
            )
            audit_record(
                actor=actor,
                action="evaluation.requested",
                obj=run,
                after={
                    "version": str(version),
                    "suite": suite.name,
                    "artefact_digest": run.artefact_digest,
                    "dataset_sha256": run.dataset_sha256,
                    "base": str(base) if base else None,
                    "base_digest": base_digest or None,
                    "evaluator": kind,
                    "device": device,
                    "queue": run.queue,
                },
            )
            _enqueue(run)
    except IntegrityError:
        # A concurrent request created the active run first (the partial unique constraint).
        active = EvaluationRun.objects.filter(
            version=version, suite=suite, status__in=ACTIVE_STATUSES
        ).first()
        if active is None:
            raise
        return active, False
    return run, True


def _request_on(
    actor: Actor, version: ModelVersion, suite: EvaluationSuite, device: str, field: str
) -> tuple[EvaluationRun, bool]:
    """`run_request`, its problems with the suite reported on `field`."""
    try:
        return run_request(actor=actor, version=version, suite=suite, device=device)
    except InvalidInput as error:
        raise InvalidInput(
            error.message,
            fields={field if name == "suite" else name: m for name, m in error.fields.items()},
            code=error.code,
        ) from None


@retry_transaction
@transaction.atomic
def runs_request(
    *,
    actor: Actor,
    version: ModelVersion,
    suites: Sequence[EvaluationSuite] | None = None,
    device: str = Device.AUTO,
) -> list[tuple[EvaluationRun, bool]]:
    """Ask for evaluations of `version` on several suites at once: by default every suite that
    applies to it (attached to its model) and that the actor can see. All are queued, or none:
    every problem is reported at once. Returns each run and whether it was created."""
    if suites is None:
        visible = suites_visible_to(actor).values("pk")
        suites = list(suites_for(version).filter(pk__in=visible))
        if not suites:
            raise InvalidInput.for_field(
                "suites",
                f"No evaluation suite that you can see applies to {version.model.name}; name "
                "the suites, or attach the model to one (its `models`).",
            )
    errors = FieldErrors()
    requested = [
        errors.collect(partial(_request_on, actor, version, suite, device, f"suites[{index}]"))
        for index, suite in enumerate(suites)
    ]
    errors.raise_if_any()
    return [request for request in requested if request is not None]


@transaction.atomic
def run_cancel(*, actor: Actor, run: EvaluationRun) -> EvaluationRun:
    """Cancel a queued or running run; a worker running it stops at its next heartbeat."""
    _require_run_permission(actor, run.version, "cancel")
    now = timezone.now()
    cancelled = EvaluationRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(
        status=RunStatus.CANCELLED,
        finished_at=now,
        claim_token=None,
        error=f"cancelled by {actor.username}",
    )
    run.refresh_from_db()
    if not cancelled:
        raise Conflict(
            f"Evaluation #{run.pk} has already {run.status}; there is nothing to cancel."
        )
    audit_record(actor=actor, action="evaluation.cancelled", obj=run, after={"status": run.status})
    return run


# --- The sweep ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    requeued: list[int]
    failed: list[int]
    republished: list[int] = field(default_factory=list)


def runs_sweep(
    *,
    stale_seconds: int | None = None,
    max_attempts: int | None = None,
    queued_stale_seconds: int | None = None,
) -> SweepReport:
    """Re-queue running runs whose heartbeat is older than the stale timeout (their worker
    vanished), or fail them once they have been tried `max_attempts` times; publish again the
    queued runs whose message the broker lost, or fail them once no worker took them
    `max_attempts` times."""
    stale_seconds = stale_seconds or settings.PEDIGREE_EVALUATION_STALE_SECONDS
    max_attempts = max_attempts or settings.PEDIGREE_EVALUATION_MAX_ATTEMPTS
    queued_stale_seconds = queued_stale_seconds or settings.PEDIGREE_EVALUATION_QUEUED_STALE_SECONDS
    requeued, failed = _sweep_running(stale_seconds, max_attempts)
    republished, lost = _sweep_queued(queued_stale_seconds, max_attempts)
    return SweepReport(requeued=requeued, failed=failed + lost, republished=republished)


def _sweep_running(stale_seconds: int, max_attempts: int) -> tuple[list[int], list[int]]:
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    stale = list(
        EvaluationRun.objects.filter(status=RunStatus.RUNNING, last_progress_at__lt=cutoff)
        .order_by("last_progress_at")
        .values_list("pk", "attempts", "claim_token")[:MAX_SWEEP_BATCH]
    )
    requeued: list[int] = []
    failed: list[int] = []
    for run_id, attempts, token in stale:
        with transaction.atomic():
            still_stale = EvaluationRun.objects.filter(
                pk=run_id,
                status=RunStatus.RUNNING,
                claim_token=token,
                last_progress_at__lt=cutoff,
            )
            if attempts >= max_attempts:
                message = (
                    f"The worker running this evaluation stopped responding (no heartbeat for "
                    f"{stale_seconds} s) on each of {attempts} attempts; giving up. Check the "
                    "worker logs (out of memory?), then request the evaluation again."
                )
                if still_stale.update(
                    status=RunStatus.FAILED, finished_at=timezone.now(), error=message
                ):
                    run_failure_audit(run_id)
                    failed.append(run_id)
            elif still_stale.update(
                status=RunStatus.QUEUED, claim_token=None, queued_at=timezone.now()
            ):
                run = EvaluationRun.objects.select_related("version__model", "suite").get(pk=run_id)
                audit_record(
                    actor=None,
                    action="evaluation.requeued",
                    obj=run,
                    after={"previous_worker": run.worker, "attempts": attempts},
                )
                _enqueue(run)
                requeued.append(run_id)
    return requeued, failed


def _sweep_queued(queued_stale_seconds: int, max_attempts: int) -> tuple[list[int], list[int]]:
    """Runs `queued` since before the cutoff whose message left the outbox: the broker lost it
    (flushed, restarted without persistence), or no worker consumes their queue. Each is
    published again (a duplicate message is harmless: the claim is a conditional UPDATE), at
    most `max_attempts` times; then, or when it has no attempt left, it is failed."""
    cutoff = timezone.now() - timedelta(seconds=queued_stale_seconds)
    lost = list(
        EvaluationRun.objects.filter(status=RunStatus.QUEUED, queued_at__lt=cutoff)
        .order_by("queued_at")
        .values_list("pk", "queued_at", "attempts", "republished", "queue")[:MAX_SWEEP_BATCH]
    )
    republished: list[int] = []
    failed: list[int] = []
    for run_id, queued_at, attempts, times, queue in lost:
        if outbox_holds(task=EVALUATE_TASK, args=[run_id]):
            continue  # the broker was down: the outbox still holds the message, nothing is lost
        with transaction.atomic():
            still_lost = EvaluationRun.objects.filter(
                pk=run_id, status=RunStatus.QUEUED, queued_at=queued_at
            )
            if attempts >= max_attempts or times >= max_attempts:
                message = (
                    f"This evaluation was tried {attempts} times and can be tried no more; "
                    "request it again."
                    if attempts >= max_attempts
                    else f"No worker took this evaluation from the '{queue}' queue although it "
                    f"was published {times + 1} times, {queued_stale_seconds} s apart; giving "
                    f"up. Check that a worker consumes the '{queue}' queue (make worker), then "
                    "request the evaluation again."
                )
                if still_lost.update(
                    status=RunStatus.FAILED, finished_at=timezone.now(), error=message
                ):
                    run_failure_audit(run_id)
                    failed.append(run_id)
            elif still_lost.update(queued_at=timezone.now(), republished=F("republished") + 1):
                run = EvaluationRun.objects.select_related("version__model", "suite").get(pk=run_id)
                audit_record(
                    actor=None,
                    action="evaluation.republished",
                    obj=run,
                    after={
                        "queue": run.queue,
                        "queued_since": queued_at.isoformat(),
                        "republished": run.republished,
                    },
                )
                _enqueue(run)
                republished.append(run_id)
    return republished, failed
