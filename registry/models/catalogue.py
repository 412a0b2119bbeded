"""The catalogue: teams, models, versions, artefact uploads, datasets; shared validators."""

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

SHA256_PATTERN = r"^[0-9a-f]{64}$"
GIT_REVISION_PATTERN = r"^[0-9a-f]{40}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$"
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"

sha256_validator = RegexValidator(
    SHA256_PATTERN, "Give a SHA-256 digest as 64 lowercase hexadecimal characters."
)
revision_validator = RegexValidator(
    GIT_REVISION_PATTERN, "Give the full 40-character commit SHA of the revision."
)
name_validator = RegexValidator(
    NAME_PATTERN,
    "Use letters, digits, '.', '_' or '-', optionally as 'namespace/name' "
    "(e.g. 'acme/support-intent').",
)
label_validator = RegexValidator(
    LABEL_PATTERN, "Use letters, digits, '.', '_', '+' or '-' (e.g. 'v1' or '1.0.2')."
)

COMPLIANCE_GROUP = "compliance"


def choices_check(
    field: str, choices: type[models.TextChoices], name: str
) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class Team(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [models.CheckConstraint(condition=~Q(slug=""), name="team_slug_not_empty")]

    def __str__(self) -> str:
        return self.slug


class Visibility(models.TextChoices):
    TEAM = "team", "Owning team only"
    INTERNAL = "internal", "Everyone in the organisation"


class ModelKind(models.TextChoices):
    UPSTREAM = "upstream", "Upstream (pretrained)"
    DERIVED = "derived", "Derived"


class RegisteredModel(models.Model):
    """A named model family such as `acme/support-intent`; its versions carry the weights."""

    name = models.CharField(max_length=193, unique=True, validators=[name_validator])
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="models")
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.TEAM
    )
    task = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    allow_multiple_production = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="model_name_not_empty"),
            choices_check("kind", ModelKind, "model_kind_valid"),
            choices_check("visibility", Visibility, "model_visibility_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class RiskTier(models.TextChoices):
    MINIMAL = "minimal"
    LIMITED = "limited"
    HIGH = "high"
    UNACCEPTABLE = "unacceptable"


class Stage(models.TextChoices):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class ModelVersion(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64, validators=[label_validator])
    description = models.TextField(blank=True)

    artefact_uri = models.CharField(max_length=1024, blank=True)
    artefact_digest = models.CharField(max_length=64, validators=[sha256_validator])
    artefact_size = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(0)])
    parameter_count = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0)]
    )
    artefact_manifest = models.JSONField(default=dict, blank=True)

    licence_declared = models.CharField(max_length=512, blank=True)
    licence_concluded = models.CharField(max_length=512, blank=True)
    # The declared licence was read from an ambiguous or unrecognised Hub licence id (gpl-3.0:
    # only or or-later?): it stands until compliance records the concluded licence.
    licence_review_required = models.BooleanField(default=False, editable=False)

    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices, default=RiskTier.LIMITED)
    intended_use = models.TextField(blank=True)
    out_of_scope_uses = models.TextField(blank=True)
    known_limitations = models.TextField(blank=True)
    uses_sensitive_personal_data = models.BooleanField(default=False)
    domain = models.CharField(max_length=128, blank=True)

    hub_repo_id = models.CharField(max_length=193, blank=True)
    hub_revision = models.CharField(max_length=40, blank=True, validators=[revision_validator])
    hub_card = models.JSONField(default=dict, blank=True)
    # An unresolved upstream reference: a Hub repo (pinned revision or none) that a card names
    # as a base but that is not imported yet. It has no artefact and no licence evidence;
    # importing the repo fills the row in place.
    unresolved = models.BooleanField(default=False, editable=False)

    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.DEVELOPMENT)
    # Copied from the model at promotion: the one-production-version rule as a DB constraint.
    production_exclusive = models.BooleanField(default=True, editable=False)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    registered_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model__name", "-registered_at"]
        verbose_name = "model version"
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="version_unique_per_model"),
            models.CheckConstraint(condition=~Q(version=""), name="version_label_not_empty"),
            models.CheckConstraint(
                condition=Q(unresolved=False, artefact_digest__regex=SHA256_PATTERN)
                | (Q(unresolved=True, artefact_digest="") & ~Q(hub_repo_id="")),
                name="version_digest_sha256",
            ),
            models.CheckConstraint(
                condition=Q(hub_revision="") | Q(hub_revision__regex=GIT_REVISION_PATTERN),
                name="version_hub_revision_sha",
            ),
            models.CheckConstraint(
                condition=Q(hub_revision="") | ~Q(hub_repo_id=""),
                name="version_hub_revision_needs_repo",
            ),
            # An upstream revision is imported once; re-importing it returns the same version.
            models.UniqueConstraint(
                fields=["hub_repo_id", "hub_revision"],
                condition=~Q(hub_revision=""),
                name="version_hub_revision_unique",
                violation_error_message="This revision of the Hub repository is already "
                "registered; import it again to get the existing version.",
            ),
            models.CheckConstraint(
                condition=Q(artefact_size__isnull=True) | Q(artefact_size__gte=0),
                name="version_size_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(parameter_count__isnull=True) | Q(parameter_count__gte=0),
                name="version_parameters_not_negative",
            ),
            choices_check("risk_tier", RiskTier, "version_risk_tier_valid"),
            choices_check("stage", Stage, "version_stage_valid"),
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(stage="production", production_exclusive=True),
                name="one_production_version_per_model",
                violation_error_message="This model already has a version in production.",
            ),
        ]
        indexes = [models.Index(fields=["stage"]), models.Index(fields=["risk_tier"])]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.version}"


class ArtefactUpload(models.Model):
    """Files streamed to the artefact store, inspected, and waiting to become one version."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A folder's name in the artefacts storage (registry.storage), so the store can move without
    # rewriting rows.
    store_path = models.CharField(max_length=255, unique=True)
    manifest = models.JSONField(default=dict)
    digest = models.CharField(max_length=64, validators=[sha256_validator])
    size = models.BigIntegerField(validators=[MinValueValidator(0)])
    consumed_by = models.OneToOneField(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="artefact_upload",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "artefact upload"
        constraints = [
            models.CheckConstraint(
                condition=Q(digest__regex=SHA256_PATTERN), name="upload_digest_sha256"
            ),
            models.CheckConstraint(condition=Q(size__gte=0), name="upload_size_not_negative"),
        ]

    def __str__(self) -> str:
        return f"upload {self.pk}"


class Dataset(models.Model):
    name = models.CharField(max_length=193, unique=True, validators=[name_validator])
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="datasets")
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.TEAM
    )
    description = models.TextField(blank=True)
    source = models.CharField(max_length=1024, blank=True)
    hub_id = models.CharField(max_length=193, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="dataset_name_not_empty"),
            choices_check("visibility", Visibility, "dataset_visibility_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64, validators=[label_validator])
    licence_declared = models.CharField(max_length=512, blank=True)
    licence_concluded = models.CharField(max_length=512, blank=True)
    sha256 = models.CharField(max_length=64, validators=[sha256_validator])
    size_bytes = models.BigIntegerField(validators=[MinValueValidator(0)])
    row_count = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(0)])
    uri = models.CharField(max_length=1024, blank=True)
    contains_personal_data = models.BooleanField(default=False)
    sensitive_attributes = models.JSONField(default=list, blank=True)
    known_biases = models.TextField(blank=True)
    intended_use = models.TextField(blank=True)
    # A Hub dataset an upstream model card names as training data: no files, so no digest and
    # no size; `uri` names the Hub dataset. Like an unresolved upstream model reference, it is
    # licence evidence at most (from the dataset's card), never data to train or test on.
    reference = models.BooleanField(default=False, editable=False)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    registered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset__name", "-registered_at"]
        verbose_name = "dataset version"
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "version"], name="dataset_version_unique_per_dataset"
            ),
            models.CheckConstraint(condition=~Q(version=""), name="dataset_version_not_empty"),
            models.CheckConstraint(
                condition=Q(reference=False, sha256__regex=SHA256_PATTERN)
                | (Q(reference=True, sha256="", size_bytes=0) & ~Q(uri="")),
                name="dataset_version_sha256",
            ),
            models.CheckConstraint(
                condition=Q(size_bytes__gte=0), name="dataset_version_size_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name}@{self.version}"


class InspectionStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Being hashed"
    DONE = "done", "Inspected"
    FAILED = "failed", "Refused"


class ArtefactInspection(models.Model):
    """An inspection of a path too large to hash inside a request, run as a task; only its
    requester (and compliance staff) may read it. Writes nothing else."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    path = models.CharField(max_length=4096)
    size = models.BigIntegerField(validators=[MinValueValidator(0)])
    status = models.CharField(
        max_length=16, choices=InspectionStatus.choices, default=InspectionStatus.PENDING
    )
    # The manifest as stored for versions (bounded), once done.
    manifest = models.JSONField(default=dict, blank=True)
    # The error envelope (status, code, message, fields), once refused.
    error = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            choices_check("status", InspectionStatus, "inspection_status_valid"),
            models.CheckConstraint(condition=Q(size__gte=0), name="inspection_size_not_negative"),
        ]

    def __str__(self) -> str:
        return f"inspection {self.pk} of {self.path[:80]}"
