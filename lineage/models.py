"""Lineage: derivation edges between versions, the runs that produced them, and holds.

A version's parents are pinned (the parent's artefact digest is copied onto the edge) and a
run's datasets are pinned (the dataset version's SHA-256 is copied onto the link), so the
record says exactly which bytes a model came from even if a catalogue row is edited later.
"""

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

from registry.models import (
    SHA256_PATTERN,
    DatasetVersion,
    ModelVersion,
    choices_check,
    sha256_validator,
)

# A full git commit id: SHA-1 (40) or SHA-256 (64) object format.
CODE_REVISION_PATTERN = r"^[0-9a-f]{40}([0-9a-f]{24})?$"
code_revision_validator = RegexValidator(
    CODE_REVISION_PATTERN,
    "Give the full commit id of the training code (40 or 64 lowercase hexadecimal characters).",
)


class Relation(models.TextChoices):
    FINETUNE = "finetune", "Fine-tune"
    ADAPTER = "adapter", "Adapter"
    QUANTIZED = "quantized", "Quantized"
    MERGE = "merge", "Merge"
    DISTILLATION = "distillation", "Distillation"
    CONTINUED_PRETRAINING = "continued_pretraining", "Continued pre-training"
    # Valid to store (the lineage is known, how is not); production waits until it is resolved.
    UNKNOWN = "unknown", "Unknown"


class Method(models.TextChoices):
    FULL_FINETUNE = "full_finetune", "Full fine-tune"
    PARTIAL_FINETUNE = "partial_finetune", "Partial fine-tune (frozen layers)"
    LORA = "lora", "LoRA"
    FEATURE_EXTRACTION = "feature_extraction", "Feature extraction (frozen base, trained head)"
    QUANTIZATION = "quantization", "Quantization"
    MERGE = "merge", "Weight merge"
    DISTILLATION = "distillation", "Distillation"
    CONTINUED_PRETRAINING = "continued_pretraining", "Continued pre-training"


class DatasetRole(models.TextChoices):
    TRAIN = "train", "Training"
    VALIDATION = "validation", "Validation"
    TEST = "test", "Test"


class HoldCategory(models.TextChoices):
    LICENCE = "licence", "Licence withdrawn or changed"
    SECURITY = "security", "Security finding"
    SAFETY = "safety", "Safety or misuse finding"
    LEGAL = "legal", "Legal request"
    DATA = "data", "Training data problem"
    QUALITY = "quality", "Quality problem"
    OTHER = "other", "Other"


class LineageEdge(models.Model):
    """`child` was made from `parent` by `relation`. Append-only: lineage is history."""

    # Both directions are served by the two-column indexes in Meta, which the walks scan alone.
    child = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="parent_edges", db_index=False
    )
    parent = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="child_edges", db_index=False
    )
    relation = models.CharField(max_length=32, choices=Relation.choices)
    # An inferred relation (from an imported card's files and metadata) waits for compliance to
    # confirm it; the evidence says what it was inferred from.
    relation_inferred = models.BooleanField(default=False)
    relation_evidence = models.JSONField(default=list, blank=True)
    relation_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    relation_confirmed_at = models.DateTimeField(null=True, blank=True)
    # Empty while the parent is an unresolved upstream reference (no artefact yet).
    parent_digest = models.CharField(max_length=64, blank=True, validators=[sha256_validator])
    # The card named the base without a revision: the newest imported one was linked.
    parent_newest = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["child_id", "id"]
        verbose_name = "lineage edge"
        constraints = [
            models.UniqueConstraint(fields=["child", "parent"], name="lineage_edge_unique"),
            models.CheckConstraint(condition=~Q(child=F("parent")), name="lineage_edge_not_self"),
            models.CheckConstraint(
                condition=Q(parent_digest="") | Q(parent_digest__regex=SHA256_PATTERN),
                name="lineage_edge_digest_sha256",
            ),
            choices_check("relation", Relation, "lineage_edge_relation_valid"),
        ]
        # The recursive walks go parent→child and child→parent; a covering index for each
        # direction (the unique constraint is child→parent) keeps every step index-only.
        indexes = [models.Index(fields=["parent", "child"], name="lineage_edge_parent_child")]

    def __str__(self) -> str:
        return f"{self.child} —{self.relation}→ {self.parent}"


class TrainingRun(models.Model):
    """The run that produced a version: method, hyperparameters, data, code and compute."""

    version = models.OneToOneField(
        ModelVersion, on_delete=models.PROTECT, related_name="training_run"
    )
    method = models.CharField(max_length=32, choices=Method.choices)
    hyperparameters = models.JSONField(default=dict, blank=True)
    code_repository = models.CharField(max_length=512, blank=True)
    code_revision = models.CharField(
        max_length=64, blank=True, validators=[code_revision_validator]
    )
    framework_versions = models.JSONField(default=dict, blank=True)
    device_kind = models.CharField(max_length=128, blank=True)
    device_count = models.PositiveIntegerField(null=True, blank=True)
    gpu_hours = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    energy_kwh = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    run_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-recorded_at"]
        verbose_name = "training run"
        constraints = [
            choices_check("method", Method, "training_run_method_valid"),
            models.CheckConstraint(
                condition=Q(code_revision="") | Q(code_revision__regex=CODE_REVISION_PATTERN),
                name="training_run_code_revision_sha",
            ),
            models.CheckConstraint(
                condition=Q(started_at__isnull=True)
                | Q(finished_at__isnull=True)
                | Q(finished_at__gte=F("started_at")),
                name="training_run_finishes_after_start",
            ),
            models.CheckConstraint(
                condition=Q(gpu_hours__isnull=True) | Q(gpu_hours__gte=0),
                name="training_run_gpu_hours_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(energy_kwh__isnull=True) | Q(energy_kwh__gte=0),
                name="training_run_energy_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_method_display()} run for {self.version}"


class TrainingDataset(models.Model):
    """A dataset version a run used, in one role, pinned by its SHA-256."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="datasets")
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="training_uses", db_index=False
    )
    role = models.CharField(max_length=16, choices=DatasetRole.choices)
    sha256 = models.CharField(max_length=64, validators=[sha256_validator])

    class Meta:
        ordering = ["run_id", "role", "id"]
        verbose_name = "training dataset"
        constraints = [
            models.UniqueConstraint(
                fields=["run", "dataset_version", "role"], name="training_dataset_unique_role"
            ),
            models.CheckConstraint(
                condition=Q(sha256__regex=SHA256_PATTERN), name="training_dataset_sha256"
            ),
            choices_check("role", DatasetRole, "training_dataset_role_valid"),
        ]
        indexes = [models.Index(fields=["dataset_version", "role"], name="training_dataset_dsv")]

    def __str__(self) -> str:
        return f"{self.dataset_version} ({self.role})"

    declared = False

    @property
    def user_version_id(self) -> int:
        """The version whose run used the data (select_related("run") avoids a query)."""
        return self.run.version_id


class UpstreamTrainingData(models.Model):
    """A Hub dataset an imported upstream model's card declares (`datasets:`) as its training
    data: a reference dataset version (no files), linked to the version without a run, since
    how the upstream model was trained is not known."""

    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="upstream_training_data"
    )
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="upstream_uses", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Read like a TrainingDataset wherever training data shows.
    role = DatasetRole.TRAIN
    sha256 = ""
    declared = True

    class Meta:
        ordering = ["version_id", "id"]
        verbose_name = "upstream training data"
        verbose_name_plural = "upstream training data"
        constraints = [
            models.UniqueConstraint(
                fields=["version", "dataset_version"], name="upstream_training_data_unique"
            ),
        ]
        indexes = [models.Index(fields=["dataset_version"], name="upstream_training_data_dsv")]

    def __str__(self) -> str:
        return f"{self.version} declares {self.dataset_version} (train)"

    @property
    def user_version_id(self) -> int:
        return self.version_id


# A version's use of a dataset version, wherever training data shows.
DataLink = TrainingDataset | UpstreamTrainingData


class Hold(models.Model):
    """A stop placed on a version; while active it holds the version and every descendant."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="holds")
    category = models.CharField(
        max_length=16, choices=HoldCategory.choices, default=HoldCategory.OTHER
    )
    reason = models.TextField()
    reference = models.CharField(
        max_length=512, blank=True, help_text="Ticket, advisory or notice behind the hold."
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField(auto_now_add=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="hold_reason_not_empty"),
            models.CheckConstraint(
                condition=Q(lifted_at__isnull=True, lifted_by__isnull=True)
                | Q(lifted_at__isnull=False, lifted_by__isnull=False),
                name="hold_lift_has_who_and_when",
            ),
            choices_check("category", HoldCategory, "hold_category_valid"),
        ]

    def __str__(self) -> str:
        return f"hold #{self.pk} on {self.version}"

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class HeldThrough(models.Model):
    """`version` is held because of `hold` (on itself or on an ancestor). Rows exist only while
    the hold is active: placing a hold inserts them in one statement, lifting deletes them."""

    # Indexed by the unique (hold, version) constraint and the (version, hold) index.
    hold = models.ForeignKey(
        Hold, on_delete=models.CASCADE, related_name="held_versions", db_index=False
    )
    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="held_through", db_index=False
    )

    class Meta:
        verbose_name = "held version"
        constraints = [
            models.UniqueConstraint(fields=["hold", "version"], name="held_through_unique"),
        ]
        indexes = [models.Index(fields=["version", "hold"], name="held_through_version")]

    def __str__(self) -> str:
        return f"{self.version} held by hold #{self.hold_id}"
