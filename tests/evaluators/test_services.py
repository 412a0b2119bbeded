"""Suites and runs through the services: validation, binding to exact bytes, the claim that
makes execution idempotent, cancellation, the sweep, and the audit trail."""

import shutil
import uuid
from datetime import timedelta

import pytest
import torch
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from evaluators import services, tasks
from evaluators.engine import metrics as engine_metrics
from evaluators.engine import names, plugins
from evaluators.models import EvaluationResult, EvaluationRun, RunStatus
from registry.errors import Conflict, InvalidInput, PermissionRefused
from registry.gates import evaluation_results
from registry.models import AuditEntry

pytestmark = pytest.mark.django_db


def actions_on(run) -> list[str]:
    return list(
        AuditEntry.objects.filter(object_type="evaluators.evaluationrun", object_id=str(run.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


@pytest.fixture
def sent(monkeypatch):
    """Tasks sent to the broker (queue and arguments), instead of running them."""
    calls = []
    monkeypatch.setattr(
        tasks.evaluate_run, "apply_async", lambda args, queue: calls.append((queue, args))
    )
    return calls


@pytest.fixture
def queued(models, make_suite, engineer, sent, django_capture_on_commit_callbacks):
    """A queued run of the biased classifier, its task sent but not run."""
    suite = make_suite(models=["acme/biased"])
    with django_capture_on_commit_callbacks(execute=True):
        run, created = services.run_request(actor=engineer, version=models["biased"], suite=suite)
    assert created
    return run


def test_engine_names_match_the_plugins_and_metrics():
    assert plugins.known_kinds() == sorted(names.EVALUATOR_KINDS)
    assert engine_metrics.KNOWN_METRICS == names.KNOWN_METRICS


# --- Suites --------------------------------------------------------------------------------------


def test_suite_pins_the_dataset_and_is_audited(make_suite, biased_dataset, models):
    suite = make_suite(models=["acme/biased", "acme/fair-head"])

    assert suite.dataset_sha256 == biased_dataset[0].sha256
    assert sorted(m.name for m in suite.models.all()) == ["acme/biased", "acme/fair-head"]
    entry = AuditEntry.objects.get(action="evaluation_suite.create")
    assert entry.after["dataset_sha256"] == suite.dataset_sha256
    assert entry.after["max_fairness_gaps"] == {"accuracy_gap": 0.1}
    assert entry.after["models"] == ["acme/biased", "acme/fair-head"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"metrics": ["accuracy", "f2"]}, "metrics", "Unknown metric(s) f2"),
        ({"min_quality": {"bleu": 0.3}}, "min_quality", "unknown metric(s) bleu"),
        ({"min_quality": {"accuracy": 1.5}}, "min_quality", "from 0 to 1"),
        (
            {"metrics": ["accuracy"], "max_fairness_gaps": {"accuracy_gap": 0.1}},
            "max_fairness_gaps",
            "which the suite does not compute",
        ),
        ({"sensitive_columns": []}, "max_fairness_gaps", "need sensitive_columns"),
        ({"sensitive_columns": ["text"]}, "sensitive_columns", "must be different columns"),
        ({"batch_size": 0}, "batch_size", "greater than or equal to 1"),
        ({"freshness_days": 0}, "freshness_days", "greater than or equal to 1"),
        ({"models": ["acme/nothing"]}, "models", "No model(s) acme/nothing that you can see"),
    ],
)
def test_suite_create_refuses_bad_input(make_suite, models, overrides, field, message):
    with pytest.raises(InvalidInput) as error:
        make_suite(**overrides)
    assert field in error.value.fields
    assert message in error.value.message


def test_suite_dataset_must_be_a_file_inside_the_roots(
    make_suite, biased_dataset, engineer, tmp_path
):
    version, dataset = biased_dataset
    outside = tmp_path / "outside.csv"
    shutil.copy(dataset.path, outside)
    version.uri = outside.as_uri()
    version.save()

    with pytest.raises(InvalidInput, match=r"outside|artefact roots") as error:
        make_suite()
    assert "dataset_version" in error.value.fields

    version.uri = "https://example.com/data.csv"
    version.save()
    with pytest.raises(InvalidInput, match="has no local file"):
        make_suite()


def test_suite_create_needs_team_membership_and_a_unique_name(make_suite, outsider, models):
    with pytest.raises(PermissionRefused):
        make_suite(actor=outsider)
    make_suite()
    with pytest.raises(Conflict, match="already exists"):
        make_suite()


def test_suite_update_changes_limits_only(make_suite, engineer, outsider, models):
    suite = make_suite()

    services.suite_update(
        actor=engineer,
        suite=suite,
        changes={"max_fairness_gaps": {"accuracy_gap": 0.2}, "models": ["acme/biased"]},
    )

    suite.refresh_from_db()
    assert suite.max_fairness_gaps == {"accuracy_gap": 0.2}
    assert [m.name for m in suite.models.all()] == ["acme/biased"]
    entry = AuditEntry.objects.get(action="evaluation_suite.update")
    assert entry.before["max_fairness_gaps"] == {"accuracy_gap": 0.1}
    assert entry.after["models"] == ["acme/biased"]
    with pytest.raises(InvalidInput, match="define a new suite"):
        services.suite_update(actor=engineer, suite=suite, changes={"label_column": "region"})
    with pytest.raises(PermissionRefused):
        services.suite_update(actor=outsider, suite=suite, changes={"freshness_days": 5})


# --- Requesting runs -----------------------------------------------------------------------------


def test_run_request_binds_digests_and_routes_by_device(
    models, make_suite, engineer, sent, django_capture_on_commit_callbacks
):
    suite = make_suite()
    with django_capture_on_commit_callbacks(execute=True):
        gpu_run, _ = services.run_request(
            actor=engineer, version=models["fair"], suite=suite, device="cuda"
        )
        cpu_run, _ = services.run_request(actor=engineer, version=models["biased"], suite=suite)

    assert sent == [("gpu", [gpu_run.pk]), ("cpu", [cpu_run.pk])]
    assert (gpu_run.status, gpu_run.queue, gpu_run.device_requested) == ("queued", "gpu", "cuda")
    assert gpu_run.artefact_digest == models["fair"].artefact_digest
    assert gpu_run.dataset_sha256 == suite.dataset_sha256
    assert (gpu_run.base_version, gpu_run.base_digest) == (
        models["encoder"],
        models["encoder"].artefact_digest,
    )
    assert cpu_run.queue == "cpu" and cpu_run.base_version is None
    requested = AuditEntry.objects.get(action="evaluation.requested", object_id=str(gpu_run.pk))
    assert requested.after["queue"] == "gpu"
    assert requested.after["base_digest"] == models["encoder"].artefact_digest


def test_nothing_is_sent_before_the_commit(models, make_suite, engineer, sent):
    suite = make_suite()
    with transaction.atomic():
        services.run_request(actor=engineer, version=models["biased"], suite=suite)
        assert sent == []


def test_asking_again_returns_the_active_run(queued, engineer, sent):
    again, created = services.run_request(
        actor=engineer, version=queued.version, suite=queued.suite
    )
    assert (again.pk, created) == (queued.pk, False)
    assert len(sent) == 1


def test_run_request_refusals(models, make_suite, engineer, outsider, make_version, register):
    suite = make_suite()
    by_digest = make_version(version="by-digest")
    with pytest.raises(InvalidInput, match="registered by digest only"):
        services.run_request(actor=engineer, version=by_digest, suite=suite)
    orphan = register("acme/orphan-adapter", "v1", "lora")
    with pytest.raises(InvalidInput, match="lineage names no base model"):
        services.run_request(actor=engineer, version=orphan, suite=suite)
    with pytest.raises(PermissionRefused, match="team 'acme'"):
        services.run_request(actor=outsider, version=models["biased"], suite=suite)
    with pytest.raises(InvalidInput, match="Use one of: auto, cpu, cuda"):
        services.run_request(actor=engineer, version=models["biased"], suite=suite, device="tpu")


# --- Executing runs ------------------------------------------------------------------------------


def test_run_records_what_ran_it_and_is_audited(models, make_suite, evaluate):
    run = evaluate(models["biased"], make_suite())

    assert run.status == RunStatus.SUCCEEDED
    assert run.device == "cpu"
    assert run.torch_version == torch.__version__
    assert run.transformers_version and run.peft_version
    assert run.cuda_version == ""
    assert (run.samples, run.progress_done, run.progress_total) == (43, 43, 43)
    assert run.samples_per_second > 0 and run.duration_s > 0
    assert run.attempts == 1 and run.worker
    assert run.started_at <= run.finished_at
    assert actions_on(run) == [
        "evaluation.requested",
        "evaluation.started",
        "evaluation.succeeded",
    ]
    succeeded = AuditEntry.objects.get(action="evaluation.succeeded")
    assert succeeded.after["artefact_digest"] == models["biased"].artefact_digest
    assert succeeded.after["overall"]["accuracy"] == run.result.overall["accuracy"]


def test_a_redelivered_task_does_not_run_twice(models, make_suite, evaluate):
    run = evaluate(models["biased"], make_suite())

    assert services.run_execute(run_id=run.pk) == "skipped"
    assert tasks.evaluate_run.apply(args=[run.pk]).result == "skipped"
    assert EvaluationResult.objects.filter(run=run).count() == 1
    assert actions_on(run).count("evaluation.succeeded") == 1


def _as_if_claimed(run, *, heartbeat_age: timedelta) -> None:
    EvaluationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        claim_token=uuid.uuid4(),
        attempts=1,
        worker="gone:1",
        last_progress_at=timezone.now() - heartbeat_age,
    )


def test_a_run_whose_worker_died_is_reclaimed_once_its_heartbeat_is_stale(queued, settings):
    settings.PEDIGREE_EVALUATION_STALE_SECONDS = 60
    _as_if_claimed(queued, heartbeat_age=timedelta(seconds=10))
    # Its worker may be alive: the task looks again later (`evaluate_run` retries) instead of
    # acknowledging the message and leaving the run to the sweep.
    assert services.run_execute(run_id=queued.pk) == "busy"

    _as_if_claimed(queued, heartbeat_age=timedelta(seconds=61))
    assert services.run_execute(run_id=queued.pk, worker="new:2") == "succeeded"

    queued.refresh_from_db()
    assert (queued.status, queued.attempts, queued.worker) == ("succeeded", 2, "new:2")
    assert EvaluationResult.objects.filter(run=queued).count() == 1


def test_a_run_tried_too_often_is_not_claimed_again(queued, settings):
    settings.PEDIGREE_EVALUATION_MAX_ATTEMPTS = 1
    _as_if_claimed(queued, heartbeat_age=timedelta(days=1))
    assert services.run_execute(run_id=queued.pk) == "skipped"


def test_cancelling_a_queued_run(queued, engineer, outsider):
    with pytest.raises(PermissionRefused):
        services.run_cancel(actor=outsider, run=queued)

    services.run_cancel(actor=engineer, run=queued)

    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELLED
    assert queued.error == "cancelled by alice"
    assert services.run_execute(run_id=queued.pk) == "skipped"
    with pytest.raises(Conflict, match="already cancelled"):
        services.run_cancel(actor=engineer, run=queued)
    assert actions_on(queued) == ["evaluation.requested", "evaluation.cancelled"]


def test_a_run_cancelled_while_running_records_nothing(queued, engineer, monkeypatch):
    from evaluators import engine

    real = engine.run_evaluation

    def cancel_midway(**kwargs):
        services.run_cancel(actor=engineer, run=EvaluationRun.objects.get(pk=queued.pk))
        kwargs["progress"](1, 43)
        return real(**kwargs)

    monkeypatch.setattr(engine, "run_evaluation", cancel_midway)

    assert services.run_execute(run_id=queued.pk) == "abandoned"
    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELLED
    assert not EvaluationResult.objects.filter(run=queued).exists()
    assert "evaluation.succeeded" not in actions_on(queued)


def test_weights_changed_after_registration_fail_the_run(
    register, roots, zoo, make_suite, evaluate
):
    copy = shutil.copytree(zoo["biased"], roots / "biased-copy")
    version = register("acme/tampered", "v1", copy)
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")

    run = evaluate(version, make_suite())

    assert run.status == RunStatus.FAILED
    assert f"not the registered {version.artefact_digest[:12]}" in run.error
    assert actions_on(run)[-1] == "evaluation.failed"
    failed = AuditEntry.objects.get(action="evaluation.failed")
    assert failed.after["error"] == run.error
    assert failed.after["artefact_digest"] == version.artefact_digest


def test_a_changed_dataset_fails_the_run(models, make_suite, evaluate, biased_dataset):
    suite = make_suite()
    path = biased_dataset[1].path
    path.write_text(path.read_text().replace("north", "North", 1))

    run = evaluate(models["biased"], suite)

    assert run.status == RunStatus.FAILED
    assert f"not the pinned {suite.dataset_sha256[:12]}" in run.error


def test_problems_the_requester_can_fix_fail_with_their_message(models, make_suite, evaluate):
    run = evaluate(models["biased"], make_suite(sensitive_columns=["gender"]))

    assert run.status == RunStatus.FAILED
    assert "no column 'gender'" in run.error
    assert "'text'" not in run.error and "'region'" not in run.error


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only worker")
def test_cuda_requested_on_a_worker_without_cuda(models, make_suite, evaluate):
    run = evaluate(models["biased"], make_suite(), device="cuda")

    assert (run.queue, run.status) == ("gpu", RunStatus.FAILED)
    assert "CUDA is not available on this worker" in run.error


# --- The sweep -----------------------------------------------------------------------------------


def test_sweep_requeues_runs_whose_worker_vanished_then_fails_them(
    queued, settings, sent, django_capture_on_commit_callbacks
):
    settings.PEDIGREE_EVALUATION_STALE_SECONDS = 60
    settings.PEDIGREE_EVALUATION_MAX_ATTEMPTS = 2
    _as_if_claimed(queued, heartbeat_age=timedelta(seconds=30))
    assert services.runs_sweep() == services.SweepReport(requeued=[], failed=[])

    _as_if_claimed(queued, heartbeat_age=timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        report = services.runs_sweep()

    assert report.requeued == [queued.pk]
    assert sent[-1] == ("cpu", [queued.pk])
    queued.refresh_from_db()
    assert (queued.status, queued.claim_token) == (RunStatus.QUEUED, None)

    EvaluationRun.objects.filter(pk=queued.pk).update(
        status=RunStatus.RUNNING,
        claim_token=uuid.uuid4(),
        attempts=2,
        last_progress_at=timezone.now() - timedelta(minutes=5),
    )
    call_command("evaluations_sweep")
    queued.refresh_from_db()
    assert queued.status == RunStatus.FAILED
    assert "stopped responding" in queued.error and "2 attempts" in queued.error
    assert actions_on(queued)[-2:] == ["evaluation.requeued", "evaluation.failed"]


def test_sweep_command_reports(capsys):
    call_command("evaluations_sweep", "--stale-seconds", "30")
    assert "Re-queued: none. Published again: none. Failed: none." in capsys.readouterr().out


def _queued_for(run, delay: timedelta) -> None:
    EvaluationRun.objects.filter(pk=run.pk).update(queued_at=timezone.now() - delay)


def test_sweep_publishes_again_a_queued_run_the_broker_lost_and_it_runs_once(
    queued, settings, sent, django_capture_on_commit_callbacks
):
    settings.PEDIGREE_EVALUATION_QUEUED_STALE_SECONDS = 600
    assert sent == [("cpu", [queued.pk])]  # published: the broker has it, then loses it
    _queued_for(queued, timedelta(minutes=5))
    assert services.runs_sweep().republished == []  # it may simply be waiting its turn

    _queued_for(queued, timedelta(minutes=11))
    with django_capture_on_commit_callbacks(execute=True):
        report = services.runs_sweep()
    assert report == services.SweepReport(requeued=[], failed=[], republished=[queued.pk])
    assert sent[-1] == ("cpu", [queued.pk])
    assert services.runs_sweep().republished == []  # the new message gets its own wait
    assert actions_on(queued) == ["evaluation.requested", "evaluation.republished"]

    # The lost message turns up after all: two messages, one evaluation.
    assert tasks.evaluate_run.apply(args=[queued.pk]).result == "succeeded"
    assert tasks.evaluate_run.apply(args=[queued.pk]).result == "skipped"
    queued.refresh_from_db()
    assert (queued.status, queued.attempts, queued.republished) == ("succeeded", 1, 1)
    assert EvaluationResult.objects.filter(run=queued).count() == 1
    assert actions_on(queued).count("evaluation.succeeded") == 1


def test_sweep_leaves_a_queued_run_the_outbox_still_holds(
    models, make_suite, engineer, settings, django_capture_on_commit_callbacks
):
    settings.PEDIGREE_EVALUATION_QUEUED_STALE_SECONDS = 600
    # The broker was down: the relay after the commit never ran, the message waits in the outbox.
    with django_capture_on_commit_callbacks(execute=False):
        run, _ = services.run_request(
            actor=engineer, version=models["biased"], suite=make_suite(models=["acme/biased"])
        )
    _queued_for(run, timedelta(hours=2))
    assert services.runs_sweep().republished == []
    run.refresh_from_db()
    assert (run.status, run.republished) == (RunStatus.QUEUED, 0)


def test_sweep_fails_a_queued_run_no_worker_takes(
    queued, settings, sent, django_capture_on_commit_callbacks
):
    settings.PEDIGREE_EVALUATION_QUEUED_STALE_SECONDS = 600
    settings.PEDIGREE_EVALUATION_MAX_ATTEMPTS = 2
    for _ in range(2):
        _queued_for(queued, timedelta(minutes=11))
        with django_capture_on_commit_callbacks(execute=True):
            assert services.runs_sweep().republished == [queued.pk]
    assert len(sent) == 3

    _queued_for(queued, timedelta(minutes=11))
    assert services.runs_sweep().failed == [queued.pk]
    queued.refresh_from_db()
    assert queued.status == RunStatus.FAILED
    assert "No worker took this evaluation from the 'cpu' queue" in queued.error
    assert "published 3 times" in queued.error
    assert actions_on(queued)[-1] == "evaluation.failed"
    assert tasks.evaluate_run.apply(args=[queued.pk]).result == "skipped"


def test_sweep_fails_a_queued_run_with_no_attempt_left(queued, settings):
    settings.PEDIGREE_EVALUATION_QUEUED_STALE_SECONDS = 600
    settings.PEDIGREE_EVALUATION_MAX_ATTEMPTS = 1
    # Its worker gave it back after a database error on its last attempt.
    EvaluationRun.objects.filter(pk=queued.pk).update(attempts=1)
    _queued_for(queued, timedelta(minutes=11))
    assert services.runs_sweep().failed == [queued.pk]
    queued.refresh_from_db()
    assert (queued.status, queued.republished) == (RunStatus.FAILED, 0)
    assert "tried 1 times and can be tried no more" in queued.error


# --- Constraints and exports ---------------------------------------------------------------------


def test_database_allows_one_active_run_and_one_result_per_run(queued, evaluate):
    duplicate = EvaluationRun(
        suite=queued.suite,
        version=queued.version,
        artefact_digest=queued.artefact_digest,
        dataset_sha256=queued.dataset_sha256,
        evaluator=queued.evaluator,
        requested_by=queued.requested_by,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        EvaluationRun.objects.filter(pk=queued.pk).update(status=RunStatus.RUNNING)

    services.run_execute(run_id=queued.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        EvaluationResult.objects.create(run=queued, min_group_size=5)


def test_results_are_exported_for_model_cards(models, make_suite, evaluate):
    suite = make_suite(models=["acme/fair-head"])
    run = evaluate(models["fair"], suite)

    results = {r["metric"]: r for r in evaluation_results(models["fair"])}

    assert results["accuracy"] == {
        "task": "text-classification",
        "dataset": "acme/tickets-eval",
        "dataset_type": "acme/tickets-eval",
        "split": "v1",
        "metric": "accuracy",
        "value": 1.0,
        "source": f"Pedigree evaluation run #{run.pk} ({suite.name})",
        "source_url": f"/api/v1/evaluation-runs/{run.pk}/",
    }
    assert evaluation_results(models["biased"]) == []
