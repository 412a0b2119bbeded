"""Evaluation suites (what to measure, and the limits) and runs (one measurement of exact bytes).

A suite pins a dataset version by its SHA-256; a run pins the version's artefact digest, the
dataset digest and, for adapters and heads, the base model's digest. What was measured is
therefore known exactly even if catalogue rows are edited later.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry.models import (
    SHA256_PATTERN,
    DatasetVersion,
    ModelVersion,
    RegisteredModel,
    Team,
    Visibility,
    choices_check,
    name_validator,
    sha256_validator,
)

MAX_BATCH_SIZE = 4096


class Task(models.TextChoices):
    TEXT_CLASSIFICATION = "text-classification", "Text classification"
    TABULAR_CLASSIFICATION = "tabular-classification", "Tabular classification"


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Device(models.TextChoices):
    AUTO = "auto", "Any (CUDA when the worker has it)"
    CPU = "cpu", "CPU"
    CUDA = "cuda", "CUDA GPU"


class Queue(models.TextChoices):
    CPU = "cpu"
    GPU = "gpu"


class EvaluationSuite(models.Model):
    """A pinned evaluation dataset, how to read it, what to compute, and the limits to meet.

    What is measured (dataset, columns, metrics, batch size, seed, group size) never changes
    once runs exist elsewhere to compare with; the limits and freshness window may be tuned.
    Suites apply to the models they are attached to (`models`): those are the ones the gate
    checks `quality`, `fairness` and `no_negative_transfer` read.
    """

    name = models.CharField(max_length=193, unique=True, validators=[name_validator])
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="evaluation_suites")
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.TEAM
    )
    description = models.TextField(blank=True)
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="evaluation_suites"
    )
    dataset_sha256 = models.CharField(max_length=64, validators=[sha256_validator])
    task = models.CharField(max_length=32, choices=Task.choices, default=Task.TEXT_CLASSIFICATION)
    # Text classification reads one text column; tabular classification numeric columns.
    input_column = models.CharField(max_length=128, blank=True)
    feature_columns = models.JSONField(default=list, blank=True)
    label_column = models.CharField(max_length=128)
    sensitive_columns = models.JSONField(default=list, blank=True)
    positive_label = models.CharField(max_length=128, blank=True)
    metrics = models.JSONField(default=list, blank=True, help_text="Empty: every known metric.")
    batch_size = models.PositiveIntegerField(
        default=32, validators=[MinValueValidator(1), MaxValueValidator(MAX_BATCH_SIZE)]
    )
    seed = models.PositiveIntegerField(default=0)
    min_group_size = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    min_quality = models.JSONField(
        default=dict, blank=True, help_text='Minimum overall metrics, e.g. {"accuracy": 0.8}.'
    )
    max_fairness_gaps = models.JSONField(
        default=dict,
        blank=True,
        help_text='Largest allowed gap per sensitive attribute, e.g. {"accuracy_gap": 0.1}; '
        "demographic_parity_ratio is a minimum instead.",
    )
    max_regression = models.JSONField(
        default=dict,
        blank=True,
        help_text='Largest allowed drop against the parent, e.g. {"accuracy": 0.02}.',
    )
    freshness_days = models.PositiveIntegerField(
        default=90, validators=[MinValueValidator(1)], help_text="Older evaluations do not count."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Last: from here on `models` in this class body is the field, not django.db.models.
    models = models.ManyToManyField(RegisteredModel, related_name="evaluation_suites", blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "evaluation suite"
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="suite_name_not_empty"),
            models.CheckConstraint(
                condition=Q(dataset_sha256__regex=SHA256_PATTERN), name="suite_dataset_sha256"
            ),
            models.CheckConstraint(condition=~Q(label_column=""), name="suite_label_named"),
            models.CheckConstraint(
                condition=Q(task=Task.TEXT_CLASSIFICATION, input_column__gt="")
                | Q(task=Task.TABULAR_CLASSIFICATION, input_column=""),
                name="suite_input_fits_task",
            ),
            models.CheckConstraint(
                condition=Q(batch_size__gte=1, batch_size__lte=MAX_BATCH_SIZE),
                name="suite_batch_size_range",
            ),
            models.CheckConstraint(condition=Q(min_group_size__gte=1), name="suite_min_group"),
            models.CheckConstraint(condition=Q(freshness_days__gte=1), name="suite_freshness"),
            choices_check("task", Task, "suite_task_valid"),
            choices_check("visibility", Visibility, "suite_visibility_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class EvaluationRun(models.Model):
    """One evaluation of one version's exact bytes on one suite.

    `queued → running → succeeded | failed | cancelled`. A worker claims a run with a
    conditional UPDATE that sets a fresh `claim_token`; every later write (progress, result)
    is conditional on that token and on `running`, so a worker that lost its claim (the run
    was cancelled, or re-queued after its heartbeat went stale) can write nothing.
    """

    suite = models.ForeignKey(EvaluationSuite, on_delete=models.PROTECT, related_name="runs")
    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="evaluation_runs"
    )
    artefact_digest = models.CharField(max_length=64, validators=[sha256_validator])
    dataset_sha256 = models.CharField(max_length=64, validators=[sha256_validator])
    evaluator = models.CharField(max_length=64)
    base_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="evaluation_runs_as_base",
    )
    base_digest = models.CharField(max_length=64, blank=True)
    device_requested = models.CharField(max_length=8, choices=Device.choices, default=Device.AUTO)
    queue = models.CharField(max_length=8, choices=Queue.choices, default=Queue.CPU)

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    # When the run last entered the queue (requested, re-queued, or published again by the
    # sweep): one `queued` for much longer had its message lost by the broker.
    queued_at = models.DateTimeField(default=timezone.now)
    republished = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)

    # What ran it.
    device = models.CharField(max_length=255, blank=True)
    torch_version = models.CharField(max_length=64, blank=True)
    cuda_version = models.CharField(max_length=64, blank=True)
    transformers_version = models.CharField(max_length=64, blank=True)
    peft_version = models.CharField(max_length=64, blank=True)
    samples = models.PositiveIntegerField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    inference_s = models.FloatField(null=True, blank=True)
    samples_per_second = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = "evaluation run"
        constraints = [
            choices_check("status", RunStatus, "run_status_valid"),
            choices_check("device_requested", Device, "run_device_valid"),
            choices_check("queue", Queue, "run_queue_valid"),
            models.CheckConstraint(
                condition=Q(artefact_digest__regex=SHA256_PATTERN), name="run_artefact_digest"
            ),
            models.CheckConstraint(
                condition=Q(dataset_sha256__regex=SHA256_PATTERN), name="run_dataset_sha256"
            ),
            models.CheckConstraint(
                condition=Q(base_version__isnull=True, base_digest="")
                | Q(base_version__isnull=False, base_digest__regex=SHA256_PATTERN),
                name="run_base_pinned",
            ),
            models.CheckConstraint(
                condition=~Q(status=RunStatus.RUNNING) | Q(claim_token__isnull=False),
                name="run_running_is_claimed",
            ),
            models.CheckConstraint(
                condition=Q(progress_done__lte=models.F("progress_total")),
                name="run_progress_within_total",
            ),
            # One active run per version and suite: asking again returns it.
            models.UniqueConstraint(
                fields=["version", "suite"],
                condition=Q(status__in=ACTIVE_STATUSES),
                name="run_one_active_per_version_suite",
            ),
        ]
        indexes = [
            models.Index(fields=["version", "suite", "status", "finished_at"]),
            models.Index(fields=["status", "last_progress_at"]),
        ]

    def __str__(self) -> str:
        return f"evaluation #{self.pk} of {self.version} on {self.suite}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class EvaluationResult(models.Model):
    """The measurements of a succeeded run; at most one per run (the DB enforces it)."""

    run = models.OneToOneField(EvaluationRun, on_delete=models.PROTECT, related_name="result")
    labels = models.JSONField(default=list)
    positive_label = models.CharField(max_length=128, blank=True)
    min_group_size = models.PositiveIntegerField()
    overall = models.JSONField(default=dict)
    groups = models.JSONField(default=dict)
    fairness = models.JSONField(default=dict)
    # The parents' latest valid runs on the same suite when this one finished, and the deltas.
    comparison = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "evaluation result"

    def __str__(self) -> str:
        return f"result of evaluation #{self.run_id}"

    def metrics_dict(self) -> dict:
        """The engine's metrics dict shape, as `evaluators.engine.thresholds` reads it."""
        return {
            "labels": self.labels,
            "positive_label": self.positive_label or None,
            "min_group_size": self.min_group_size,
            "overall": self.overall,
            "groups": self.groups,
            "fairness": self.fairness,
        }
