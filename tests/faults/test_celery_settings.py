"""The Celery settings reliability depends on, pinned: a task is acknowledged only once done,
a worker lost mid-task gives it back, one message at a time per process, every task has a time
limit, and the broker never redelivers a task that may still be running."""

from config.celery import app
from evaluators import tasks as evaluator_tasks
from registry import tasks as registry_tasks

TASKS = [
    evaluator_tasks.evaluate_run,
    evaluator_tasks.sweep_evaluation_runs,
    registry_tasks.deliver_event,
    registry_tasks.relay_outbox,
    registry_tasks.sweep_deliveries,
    registry_tasks.sweep_uploads,
    registry_tasks.seal_audit_chain,
]


def test_acknowledgement_after_the_work_and_one_message_at_a_time():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    for task in (evaluator_tasks.evaluate_run, registry_tasks.deliver_event):
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True


def test_every_task_has_time_limits_inside_the_visibility_timeout():
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    for task in TASKS:
        assert task.soft_time_limit and task.time_limit, task.name
        assert task.soft_time_limit < task.time_limit < visibility, task.name


def test_the_beat_schedule_runs_every_recovery_task():
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {
        "registry.tasks.relay_outbox",
        "registry.tasks.sweep_deliveries",
        "evaluators.tasks.sweep_evaluation_runs",
        "registry.tasks.seal_audit_chain",
    } <= scheduled
