"""The shapes of answers that services build as plain data (the gate's verdict, `me`), as
serializers so that the OpenAPI schema types them instead of saying `object`. They document;
the views return the services' data as it is, and the contract test holds the two together."""

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from registry.gates import DISTRIBUTIONS, USES
from registry.models import RiskTier, Stage


class WaiverInForceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()
    granted_by = serializers.CharField()
    expires_at = serializers.DateTimeField()


class GateCheckSerializer(serializers.Serializer):
    """One gate check's verdict and what it relied on."""

    check = serializers.CharField()
    passed = serializers.BooleanField()
    # DRF's metaclass moves declared fields off the class: this does not shadow Field.required.
    required = serializers.BooleanField(  # type: ignore[assignment]
        help_text="False: reported, never refuses."
    )
    reasons = serializers.ListField(child=serializers.CharField())
    evidence = serializers.DictField(
        help_text="What the check relied on: digests, policy revision, run and hold ids."
    )
    waiver = WaiverInForceSerializer(
        allow_null=True, required=False, help_text="The waiver that covers this failed check."
    )


class GatePolicySerializer(serializers.Serializer):
    """The stage policy the gate applied (none configured: not allowed, nothing required)."""

    stage = serializers.ChoiceField(choices=Stage.choices)
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices)
    allowed = serializers.BooleanField()
    required_checks = serializers.ListField(child=serializers.CharField())
    approvals_required = serializers.IntegerField()
    revision = serializers.IntegerField()


@extend_schema_field(GateCheckSerializer(many=True))
class GateChecksField(serializers.JSONField):
    """A decision's stored check rows, as the gate answered them."""


@extend_schema_field(GatePolicySerializer)
class GatePolicyField(serializers.JSONField):
    """A decision's stored stage policy, as the gate applied it."""


class GateAnswerSerializer(serializers.Serializer):
    """GET /versions/{id}/gate/: may the version enter `stage`, with every check."""

    version = serializers.CharField(help_text="MODEL@VERSION")
    version_id = serializers.IntegerField()
    from_stage = serializers.ChoiceField(choices=Stage.choices)
    stage = serializers.ChoiceField(choices=Stage.choices)
    use = serializers.ChoiceField(choices=USES)
    distribution = serializers.ChoiceField(choices=DISTRIBUTIONS)
    passed = serializers.BooleanField()
    artefact_digest = serializers.CharField()
    policy = GatePolicySerializer()
    checks = GateCheckSerializer(many=True)


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    teams = serializers.ListField(child=serializers.SlugField())
    compliance = serializers.BooleanField()


def gate_refusal(decision: serializers.Serializer) -> serializers.Serializer:
    """The 409 of a refused promotion: the error envelope with the recorded `decision`."""
    return inline_serializer(
        "GateRefusal",
        fields={
            "error": inline_serializer(
                "GateRefusalError",
                fields={
                    "status": serializers.IntegerField(),
                    "code": serializers.CharField(),
                    "message": serializers.CharField(),
                    "decision": decision,
                },
            )
        },
    )
