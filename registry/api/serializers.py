"""API shapes. Serializers parse and present; the rules live in services."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from registry.api.answers import GateChecksField, GatePolicyField
from registry.api.base import StrictFieldsMixin, StrictSerializer
from registry.gates import DISTRIBUTIONS, USES
from registry.models import (
    Approval,
    ApprovalDecision,
    CheckWaiver,
    ComplianceState,
    ComplianceStatus,
    Dataset,
    DatasetVersion,
    EvidenceProposal,
    GateDecision,
    ModelVersion,
    RegisteredModel,
    Stage,
    StagePolicy,
    Team,
)
from registry.selectors import (
    datasets_visible_to,
    models_visible_to,
    teams_visible_to,
)

User = get_user_model()


class VisibleSlugField(serializers.SlugRelatedField):
    """A related object named by slug/name, looked up only among those the caller can see."""

    def __init__(self, *, visible, **kwargs):
        self._visible = visible
        super().__init__(**kwargs)

    def get_queryset(self):
        return self._visible(self.context["request"].user)


class TeamSerializer(StrictSerializer):
    members = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)

    class Meta:
        model = Team
        fields = ["id", "slug", "name", "description", "members", "created_at"]
        read_only_fields = ["id", "members", "created_at"]


class TeamUpdateSerializer(TeamSerializer):
    class Meta(TeamSerializer.Meta):
        read_only_fields = ["id", "slug", "members", "created_at"]


class ModelSerializer(StrictSerializer):
    team = VisibleSlugField(slug_field="slug", visible=teams_visible_to)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "name",
            "kind",
            "team",
            "visibility",
            "task",
            "description",
            "allow_multiple_production",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        # Uniqueness is checked by the service (409 with a clear message), not here.
        validators = []
        extra_kwargs = {"name": {"validators": []}}


class ModelUpdateSerializer(ModelSerializer):
    class Meta(ModelSerializer.Meta):
        read_only_fields = ["id", "name", "kind", "team", "created_by", "created_at", "updated_at"]


VERSION_FIELDS = [
    "id",
    "model",
    "model_id",
    "version",
    "ref",
    "description",
    "artefact_uri",
    "artefact_digest",
    "artefact_size",
    "parameter_count",
    "licence_declared",
    "licence_concluded",
    "licence_review_required",
    "risk_tier",
    "intended_use",
    "out_of_scope_uses",
    "known_limitations",
    "uses_sensitive_personal_data",
    "domain",
    "hub_repo_id",
    "hub_revision",
    "unresolved",
    "stage",
    "registered_by",
    "registered_at",
    "updated_at",
]


# Set only by inspecting files and importing from the Hub: a client stating them could claim a
# Hub revision (and block every other team's import of it) or point a version at other weights.
SERVER_OWNED_VERSION_FIELDS = [
    "artefact_uri",
    "artefact_size",
    "parameter_count",
    "hub_repo_id",
    "hub_revision",
]


class VersionSerializer(StrictSerializer):
    """A version. `artefact_digest` may be given on creation alone, for weights Pedigree does not
    hold; registering from files or importing from the Hub sets everything else about them."""

    model = VisibleSlugField(slug_field="name", visible=models_visible_to)
    model_id = serializers.IntegerField(source="model.id", read_only=True)
    ref = serializers.SerializerMethodField()
    registered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    unknown_field_hint = (
        "Unknown, read-only or set by the server (artefact_uri, artefact_size, parameter_count, "
        "hub_repo_id and hub_revision come from inspecting files or importing from the Hub). "
        "Writable fields: {fields}."
    )

    class Meta:
        model = ModelVersion
        fields = VERSION_FIELDS
        read_only_fields = [
            "id",
            *SERVER_OWNED_VERSION_FIELDS,
            "stage",
            "registered_by",
            "registered_at",
            "updated_at",
        ]
        validators = []

    def get_ref(self, version: ModelVersion) -> str:
        return f"{version.model.name}@{version.version}"


def change_reason() -> serializers.CharField:
    return serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=4000,
        help_text="Why: kept with the proposal when the change needs a compliance conclusion.",
    )


class VersionUpdateSerializer(VersionSerializer):
    reason = change_reason()

    class Meta(VersionSerializer.Meta):
        fields = [*VERSION_FIELDS, "reason"]
        read_only_fields = [
            "id",
            "model",
            "version",
            "artefact_digest",
            *SERVER_OWNED_VERSION_FIELDS,
            "stage",
            "registered_by",
            "registered_at",
            "updated_at",
        ]


class DatasetSerializer(StrictSerializer):
    team = VisibleSlugField(slug_field="slug", visible=teams_visible_to)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "team",
            "visibility",
            "description",
            "source",
            "hub_id",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        validators = []
        extra_kwargs = {"name": {"validators": []}}


class DatasetUpdateSerializer(DatasetSerializer):
    class Meta(DatasetSerializer.Meta):
        read_only_fields = ["id", "name", "team", "created_by", "created_at", "updated_at"]


class DatasetVersionSerializer(StrictSerializer):
    dataset = VisibleSlugField(slug_field="name", visible=datasets_visible_to)
    sensitive_attributes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=64
    )
    registered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    ref = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "dataset",
            "version",
            "ref",
            "licence_declared",
            "licence_concluded",
            "sha256",
            "size_bytes",
            "row_count",
            "uri",
            "reference",
            "contains_personal_data",
            "sensitive_attributes",
            "known_biases",
            "intended_use",
            "registered_by",
            "registered_at",
        ]
        read_only_fields = ["id", "reference", "registered_by", "registered_at"]
        validators = []

    def get_ref(self, dataset_version: DatasetVersion) -> str:
        return f"{dataset_version.dataset.name}@{dataset_version.version}"


class DatasetVersionUpdateSerializer(DatasetVersionSerializer):
    reason = change_reason()

    class Meta(DatasetVersionSerializer.Meta):
        fields = [*DatasetVersionSerializer.Meta.fields, "reason"]
        read_only_fields = [
            "id",
            "dataset",
            "version",
            "sha256",
            "size_bytes",
            "reference",
            "registered_by",
            "registered_at",
        ]


class GateQuerySerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.values)
    use = serializers.ChoiceField(choices=USES, default="commercial")
    distribution = serializers.ChoiceField(choices=DISTRIBUTIONS, default="hosted")


class PromoteSerializer(StrictFieldsMixin, GateQuerySerializer):
    justification = serializers.CharField(max_length=4000, allow_blank=True, default="")
    replace_production = serializers.BooleanField(default=False)


class GateDecisionSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)
    version = serializers.StringRelatedField()
    results = GateChecksField(read_only=True)
    policy = GatePolicyField(read_only=True)

    class Meta:
        model = GateDecision
        fields = [
            "id",
            "version",
            "from_stage",
            "to_stage",
            "use",
            "distribution",
            "passed",
            "results",
            "artefact_digest",
            "policy",
            "justification",
            "actor",
            "decided_at",
        ]
        read_only_fields = fields


class ApprovalInputSerializer(StrictFieldsMixin, serializers.Serializer):
    stage = serializers.ChoiceField(choices=["staging", "production"])
    decision = serializers.ChoiceField(choices=ApprovalDecision.values, default="approve")
    comment = serializers.CharField(max_length=4000, allow_blank=True, default="")
    valid_days = serializers.IntegerField(required=False, min_value=1)
    attestations = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=50
    )


class ApprovalSerializer(serializers.ModelSerializer):
    approver = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Approval
        fields = [
            "id",
            "stage",
            "decision",
            "artefact_digest",
            "comment",
            "approver",
            "created_at",
            "expires_at",
            "attestations",
        ]
        read_only_fields = fields


class WaiverInputSerializer(StrictFieldsMixin, serializers.Serializer):
    check = serializers.CharField(max_length=64)
    reason = serializers.CharField(max_length=4000)
    expires_at = serializers.DateTimeField()


class WaiverSerializer(serializers.ModelSerializer):
    granted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    check = serializers.CharField(source="check_name")

    class Meta:
        model = CheckWaiver
        fields = [
            "id",
            "check",
            "artefact_digest",
            "reason",
            "granted_by",
            "created_at",
            "expires_at",
            "revoked_at",
        ]
        read_only_fields = fields


class StagePolicySerializer(serializers.ModelSerializer):
    updated_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = StagePolicy
        fields = [
            "id",
            "stage",
            "risk_tier",
            "allowed",
            "required_checks",
            "approvals_required",
            "hold_when_out_of_compliance",
            "revision",
            "updated_by",
            "updated_at",
        ]
        read_only_fields = fields


class ComplianceStatusSerializer(serializers.ModelSerializer):
    version = serializers.StringRelatedField()
    # Null for a version no gate judges (archived), which has no stored status.
    state = serializers.ChoiceField(
        choices=ComplianceState.choices, allow_null=True, read_only=True
    )
    computed_at = serializers.DateTimeField(allow_null=True, read_only=True)

    class Meta:
        model = ComplianceStatus
        fields = [
            "version",
            "stage",
            "state",
            "current_passed",
            "target_stage",
            "target_passed",
            "failing",
            "action",
            "gated",
            "out_of_compliance_since",
            "computed_at",
        ]
        read_only_fields = fields


class ProposalSerializer(serializers.ModelSerializer):
    """An evidence-change proposal: what would change (`before` → `changes`), why it needs a
    compliance conclusion, who proposed it and why, and how it was concluded."""

    target_type = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()
    proposed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    concluded_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = EvidenceProposal
        fields = [
            "id",
            "target_type",
            "target",
            "version",
            "dataset_version",
            "kind",
            "changes",
            "before",
            "weakening",
            "protected_because",
            "reason",
            "status",
            "proposed_by",
            "proposed_at",
            "concluded_by",
            "concluded_at",
            "conclusion",
        ]
        read_only_fields = fields

    def get_target_type(self, proposal: EvidenceProposal) -> str:
        return "version" if proposal.version_id is not None else "dataset_version"

    def get_target(self, proposal: EvidenceProposal) -> str:
        return str(proposal.target)


class ProposedSerializer(serializers.Serializer):
    """The 202 answer to a change recorded as a proposal instead of made."""

    message = serializers.CharField()
    proposal = ProposalSerializer()


class ProposalConclusionSerializer(StrictFieldsMixin, serializers.Serializer):
    comment = serializers.CharField(max_length=4000, allow_blank=True, default="")
