"""The catalogue: teams, models, versions, datasets, and the append-only audit log."""

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

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
                condition=Q(sha256__regex=SHA256_PATTERN), name="dataset_version_sha256"
            ),
            models.CheckConstraint(
                condition=Q(size_bytes__gte=0), name="dataset_version_size_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name}@{self.version}"


class AuditEntry(models.Model):
    """One state change. Append-only; each entry's hash covers the previous entry's hash."""

    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=255)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # Set by the sealer (`registry.audit.audit_seal`) right after the change commits.
    seq = models.PositiveBigIntegerField(null=True, blank=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [models.Index(fields=["object_type", "object_id"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(hash__isnull=True, seq__isnull=True)
                | Q(hash__regex=SHA256_PATTERN, seq__isnull=False),
                name="audit_sealed_entries_have_sha256",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.object_repr}"


class AuditCheckpoint(models.Model):
    """A signed statement of the audit chain's head: `entry_count` sealed entries ending at
    `seq` with hash `head_hash`, at `signed_at`. Copies go to sinks outside the database, so
    deleting the chain's tail or re-hashing it (which needs the private key to re-sign) shows."""

    seq = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    entry_count = models.PositiveBigIntegerField()
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=128)

    class Meta:
        ordering = ["-seq", "-id"]
        verbose_name = "audit checkpoint"

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"


class StagePolicy(models.Model):
    """Which gate checks and how many approvals a version of a risk tier needs to enter a stage.

    Edited by compliance staff in the admin; every change is audited and bumps `revision`, which
    each gate decision records.
    """

    stage = models.CharField(max_length=16, choices=Stage.choices)
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices)
    allowed = models.BooleanField(
        default=True, help_text="False: no version of this risk tier may ever enter this stage."
    )
    required_checks = models.JSONField(default=list, blank=True)
    approvals_required = models.PositiveSmallIntegerField(default=0)
    hold_when_out_of_compliance = models.BooleanField(
        default=False,
        help_text="Place a hold automatically on a version of this tier in this stage that no "
        "longer passes its gate.",
    )
    revision = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stage", "risk_tier"]
        verbose_name_plural = "stage policies"
        constraints = [
            models.UniqueConstraint(fields=["stage", "risk_tier"], name="stage_policy_unique"),
            choices_check("stage", Stage, "stage_policy_stage_valid"),
            choices_check("risk_tier", RiskTier, "stage_policy_risk_tier_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.stage} / {self.risk_tier}"


class GateDecision(models.Model):
    """The outcome of one promotion attempt, with every check's result and the evidence used."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="decisions")
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    use = models.CharField(max_length=16)
    distribution = models.CharField(max_length=16)
    passed = models.BooleanField()
    results = models.JSONField(default=list)
    artefact_digest = models.CharField(max_length=64, validators=[sha256_validator])
    policy = models.JSONField(default=dict)
    justification = models.TextField(blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at", "-id"]
        constraints = [
            choices_check("to_stage", Stage, "gate_decision_stage_valid"),
            models.CheckConstraint(
                condition=Q(artefact_digest__regex=SHA256_PATTERN), name="gate_decision_digest"
            ),
        ]

    def __str__(self) -> str:
        outcome = "passed" if self.passed else "refused"
        return f"{self.version} → {self.to_stage}: {outcome}"


class ApprovalDecision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class Approval(models.Model):
    """A compliance officer's sign-off (or rejection) of exact weights for a stage; it expires."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="approvals")
    stage = models.CharField(max_length=16, choices=Stage.choices)
    decision = models.CharField(max_length=8, choices=ApprovalDecision.choices)
    artefact_digest = models.CharField(max_length=64, validators=[sha256_validator])
    comment = models.TextField(blank=True)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    # What the approval saw (`registry.evidence.evidence_snapshot`); it stops counting when the
    # current evidence differs. Empty on approvals given before snapshots were kept: those no
    # longer count (what they approved is unknown).
    evidence = models.JSONField(default=dict, blank=True, editable=False)
    # Facts only the releasing team knows that the approver attests to (licensing names them,
    # e.g. a licence's user threshold): sorted, unique ids.
    attestations = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            choices_check("stage", Stage, "approval_stage_valid"),
            choices_check("decision", ApprovalDecision, "approval_decision_valid"),
            models.CheckConstraint(
                condition=Q(artefact_digest__regex=SHA256_PATTERN), name="approval_digest"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")), name="approval_expires_later"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.version} for {self.stage} by {self.approver}"


class CheckWaiver(models.Model):
    """Compliance waives one failing gate check for exact weights, with a reason, until expiry."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="waivers")
    check_name = models.CharField(max_length=64)
    artefact_digest = models.CharField(max_length=64, validators=[sha256_validator])
    reason = models.TextField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "gate check waiver"
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="waiver_reason_not_empty"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")), name="waiver_expires_later"
            ),
        ]

    def __str__(self) -> str:
        return f"waiver of {self.check_name} on {self.version}"


class ComplianceState(models.TextChoices):
    COMPLIANT = "compliant", "Compliant"
    READY = "ready", "Ready for its next stage"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    BLOCKED = "blocked", "Blocked"
    HELD = "held", "Held"
    OUT_OF_COMPLIANCE = "out_of_compliance", "Out of compliance"


class ComplianceStatus(models.Model):
    """A version's current standing, recomputed by `registry.services.compliance` whenever an
    input of its gate changes and on a schedule: does it still pass the gate of the stage it is
    in, and would it pass the next one it wants?"""

    version = models.OneToOneField(
        ModelVersion, primary_key=True, on_delete=models.CASCADE, related_name="compliance"
    )
    stage = models.CharField(max_length=16, choices=Stage.choices)
    state = models.CharField(max_length=24, choices=ComplianceState.choices)
    # None in development: there is no gate to keep passing.
    current_passed = models.BooleanField(null=True)
    target_stage = models.CharField(max_length=16, blank=True)
    target_passed = models.BooleanField(null=True)
    # The failing checks: [{"stage", "check", "reasons"}], current stage first.
    failing = models.JSONField(default=list, blank=True)
    action = models.TextField(blank=True)
    gated = models.BooleanField(default=False, help_text="Anyone ever asked to promote it.")
    out_of_compliance_since = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "compliance statuses"
        constraints = [choices_check("state", ComplianceState, "compliance_state_valid")]
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.version_id}: {self.state}"


class WebhookEndpoint(models.Model):
    """An outgoing webhook: governance events are POSTed here, signed with HMAC-SHA256."""

    name = models.CharField(max_length=128, unique=True)
    url = models.URLField(max_length=1024)
    secret = models.CharField(max_length=128)
    events = models.JSONField(default=list, blank=True, help_text="Event kinds; empty = all.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class EventDelivery(models.Model):
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the current attempt began: one `sending` for longer than the webhook timeout lost
    # its worker, and a redelivered task or the sweep takes it over.
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "event deliveries"
        constraints = [choices_check("status", DeliveryStatus, "delivery_status_valid")]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class OutboxMessage(models.Model):
    """A Celery task to send, written in the transaction of the change that needs it (the
    transactional outbox): the relay publishes it after the commit, and again until the broker
    takes it, so a broker outage delays work and loses none (`registry.outbox`)."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    queue = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    # Not before: a failed publish backs off, and a relay claims a message by moving it ahead
    # (a lease, so one whose relay died is picked up again).
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["available_at"],
                condition=Q(sent_at__isnull=True),
                name="outbox_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.task}{self.args}"
