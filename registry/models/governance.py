"""Governance records: the audit log and its checkpoints, stage policies, gate decisions,
approvals, waivers and each version's compliance status."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from registry.models.catalogue import (
    SHA256_PATTERN,
    DatasetVersion,
    ModelVersion,
    RiskTier,
    Stage,
    choices_check,
    sha256_validator,
)


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


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class ProposalKind(models.TextChoices):
    """What a proposal changes: a version's or dataset version's fields (the core's), or a
    version's lineage (made by the app registering the kind, `registry.plugins.EvidenceChange`)."""

    FIELDS = "fields", "Fields"
    PARENTS_ADD = "parents_add", "Parents added"
    EDGE_CORRECT = "edge_correct", "Parent edge corrected"
    TRAINING_RUN = "training_run", "Training run recorded"


class EvidenceProposal(models.Model):
    """An engineer's change to protected gate evidence (a version's or a dataset version's
    fields, a version's parents or training data) that could weaken a check: recorded instead
    of applied, until compliance staff outside the owning team accept it (the change is then
    made by the same service as any such change, voiding the approvals it touches) or reject
    it."""

    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="proposals"
    )
    dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="proposals"
    )
    kind = models.CharField(
        max_length=16, choices=ProposalKind.choices, default=ProposalKind.FIELDS
    )
    # Fields: {field: new value}, licences normalised, and `before` the values they replace.
    # Other kinds: the change's validated input, and `before` the lineage it was made against.
    changes = models.JSONField()
    before = models.JSONField()
    # {what: why it could weaken a check}, and what made the evidence protected when proposed.
    weakening = models.JSONField(default=dict, blank=True)
    protected_because = models.TextField(blank=True)
    reason = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.PENDING
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField(auto_now_add=True)
    concluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    concluded_at = models.DateTimeField(null=True, blank=True)
    conclusion = models.TextField(blank=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]
        verbose_name = "evidence change proposal"
        constraints = [
            choices_check("status", ProposalStatus, "evidence_proposal_status_valid"),
            choices_check("kind", ProposalKind, "evidence_proposal_kind_valid"),
            # Only versions have lineage.
            models.CheckConstraint(
                condition=Q(kind=ProposalKind.FIELDS) | Q(version__isnull=False),
                name="evidence_proposal_lineage_on_versions",
            ),
            models.CheckConstraint(
                condition=Q(version__isnull=False, dataset_version__isnull=True)
                | Q(version__isnull=True, dataset_version__isnull=False),
                name="evidence_proposal_one_target",
            ),
            models.CheckConstraint(
                condition=Q(status=ProposalStatus.PENDING, concluded_at__isnull=True)
                | (~Q(status=ProposalStatus.PENDING) & Q(concluded_at__isnull=False)),
                name="evidence_proposal_concluded_when_not_pending",
            ),
        ]
        indexes = [models.Index(fields=["status", "proposed_at"])]

    def __str__(self) -> str:
        return f"proposal #{self.pk} on {self.target}"

    @property
    def target(self) -> "ModelVersion | DatasetVersion":
        target = self.version if self.version_id is not None else self.dataset_version
        assert target is not None
        return target
