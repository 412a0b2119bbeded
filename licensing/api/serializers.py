"""Licensing API shapes. Serializers parse and present; the rules live in services."""

from rest_framework import serializers

from licensing.models import (
    RULE_FIELDS,
    HubLicenceMapping,
    Licence,
    LicencePolicy,
    LicenceRule,
    LicenceTerm,
    LicenceWaiver,
)
from registry.api.base import StrictFieldsMixin
from registry.gates import DISTRIBUTIONS, USES
from registry.models import Stage


class LicenceTermSerializer(serializers.ModelSerializer):
    type = serializers.CharField(help_text="the term type")
    value = serializers.JSONField(allow_null=True)
    carries_through = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = LicenceTerm
        fields = ["type", "clause", "text", "value", "carries_through", "note", "attestation"]
        read_only_fields = fields


class LicenceSerializer(serializers.ModelSerializer):
    # Plain strings in the schema: the choice sets are listed by /api/v1/licence-policy/.
    category = serializers.CharField()
    catalogue_category = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Licence
        fields = [
            "spdx_id",
            "name",
            "category",
            "review_required",
            "url",
            "curated",
            "deprecated",
            "aliases",
            "notes",
            "catalogue_category",
            "catalogue_review_required",
            "compliance_override",
        ]
        read_only_fields = fields


class LicenceDetailSerializer(LicenceSerializer):
    terms = LicenceTermSerializer(many=True, read_only=True)
    hub_ids = serializers.SlugRelatedField(slug_field="hub_id", many=True, read_only=True)

    class Meta(LicenceSerializer.Meta):
        fields = [*LicenceSerializer.Meta.fields, "terms", "hub_ids"]
        read_only_fields = fields


class HubLicenceMappingSerializer(serializers.ModelSerializer):
    licence = serializers.SlugRelatedField(slug_field="spdx_id", read_only=True)

    class Meta:
        model = HubLicenceMapping
        fields = ["hub_id", "licence", "review_required", "reason"]
        read_only_fields = fields


class LicenceRuleSerializer(serializers.ModelSerializer):
    category = serializers.CharField()
    term_type = serializers.CharField()
    # Null for rules on a category or condition rather than one licence.
    licence = serializers.SlugRelatedField(slug_field="spdx_id", read_only=True, allow_null=True)
    stages = serializers.ListField(child=serializers.CharField())
    uses = serializers.ListField(child=serializers.CharField())
    distributions = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = LicenceRule
        fields = [*RULE_FIELDS, "updated_at"]
        read_only_fields = fields


class LicencePolicySerializer(serializers.ModelSerializer):
    rules = LicenceRuleSerializer(many=True, read_only=True)
    updated_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = LicencePolicy
        fields = [
            "id",
            "name",
            "description",
            "active",
            "revision",
            "updated_by",
            "updated_at",
            "rules",
        ]
        read_only_fields = fields


class LicenceCheckQuerySerializer(serializers.Serializer):
    stage = serializers.ChoiceField(
        choices=[s for s in Stage.values if s != Stage.ARCHIVED], default=Stage.PRODUCTION
    )
    use = serializers.ChoiceField(choices=USES, default="commercial")
    distribution = serializers.ChoiceField(choices=DISTRIBUTIONS, default="hosted")


class PolicyQuerySerializer(serializers.Serializer):
    revision = serializers.IntegerField(min_value=1, required=False)


class LicenceWaiverInputSerializer(StrictFieldsMixin, serializers.Serializer):
    version = serializers.CharField(max_length=300, help_text="version id or MODEL@VERSION")
    rule = serializers.SlugField(max_length=64)
    licence = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    reason = serializers.CharField(max_length=4000, allow_blank=True)
    approver = serializers.CharField(max_length=150, help_text="username of a compliance officer")
    expires_at = serializers.DateTimeField(allow_null=True)


class LicenceWaiverSerializer(serializers.ModelSerializer):
    version = serializers.StringRelatedField()
    rule = serializers.CharField(source="rule_name")
    licence = serializers.CharField(source="licence_id")
    approver = serializers.SlugRelatedField(slug_field="username", read_only=True)
    granted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    revoked_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = LicenceWaiver
        fields = [
            "id",
            "version",
            "version_id",
            "artefact_digest",
            "rule",
            "licence",
            "reason",
            "approver",
            "granted_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "revoked_by",
        ]
        read_only_fields = fields
