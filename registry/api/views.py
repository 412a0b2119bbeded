from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from registry import services
from registry.api import answers, serializers
from registry.api.base import VERSION_REF_REGEX, acting_user, parsed_query
from registry.api.proposals import ProposingUpdateMixin, target_proposals
from registry.filters import DatasetFilter, DatasetVersionFilter, ModelFilter, VersionFilter
from registry.gates import failing_checks, gate_evaluate
from registry.memo import read_memo
from registry.models import (
    Approval,
    CheckWaiver,
    ComplianceStatus,
    Dataset,
    DatasetVersion,
    EvidenceProposal,
    GateDecision,
    ModelVersion,
    RegisteredModel,
    StagePolicy,
    Team,
)
from registry.selectors import (
    dataset_versions_visible_to,
    datasets_visible_to,
    is_compliance,
    models_visible_to,
    redacted_for,
    teams_visible_to,
    version_in,
    versions_visible_to,
)
from registry.types import Reader


class CatalogueViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List, create, retrieve and PATCH; writes go through one service each."""

    permission_classes = [IsAuthenticated]
    http_method_names = ["get", "post", "patch", "head", "options"]
    update_serializer_class: type[BaseSerializer[Any]]
    # The selector of the rows the caller may see, and the services each write calls.
    visible: Callable[[Reader], QuerySet[Any]]
    create_object: Callable[[dict[str, Any]], Model]
    update_object: Callable[[Any, dict[str, Any]], Model]

    def get_queryset(self):
        return type(self).visible(self.request.user)

    def get_serializer_class(self):
        if self.action == "partial_update":
            return self.update_serializer_class
        return self.serializer_class

    def perform_create(self, serializer):
        serializer.instance = self.create_object(dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = self.update_object(
            serializer.instance, dict(serializer.validated_data)
        )


class TeamViewSet(CatalogueViewSet):
    serializer_class = serializers.TeamSerializer
    update_serializer_class = serializers.TeamUpdateSerializer
    visible = staticmethod(lambda user: teams_visible_to(user).prefetch_related("members"))
    search_fields = ["slug", "name"]
    ordering_fields = ["slug", "name", "created_at"]

    def create_object(self, data: dict[str, Any]) -> Team:
        return services.team_create(actor=acting_user(self.request), **data)

    def update_object(self, instance: Team, changes: dict[str, Any]) -> Team:
        return services.team_update(actor=acting_user(self.request), team=instance, changes=changes)


class ModelViewSet(CatalogueViewSet):
    serializer_class = serializers.ModelSerializer
    update_serializer_class = serializers.ModelUpdateSerializer
    visible = staticmethod(models_visible_to)
    filterset_class = ModelFilter
    search_fields = ["name", "description", "task"]
    ordering_fields = ["name", "created_at", "updated_at", "kind"]

    def create_object(self, data: dict[str, Any]) -> RegisteredModel:
        return services.model_create(actor=acting_user(self.request), **data)

    def update_object(self, instance: RegisteredModel, changes: dict[str, Any]) -> RegisteredModel:
        return services.model_update(
            actor=acting_user(self.request), model=instance, changes=changes
        )


@extend_schema_view(
    partial_update=extend_schema(
        responses={200: serializers.VersionSerializer, 202: serializers.ProposedSerializer}
    )
)
class VersionViewSet(ProposingUpdateMixin, CatalogueViewSet):
    serializer_class = serializers.VersionSerializer
    update_serializer_class = serializers.VersionUpdateSerializer
    visible = staticmethod(versions_visible_to)
    filterset_class = VersionFilter
    search_fields = ["version", "model__name", "description"]
    ordering_fields = ["registered_at", "updated_at", "version", "stage", "risk_tier"]
    # Every route names the version by id or MODEL@VERSION (see `registry.api.base`).
    lookup_value_regex = VERSION_REF_REGEX

    def create_object(self, data: dict[str, Any]) -> ModelVersion:
        return services.version_create(actor=acting_user(self.request), **data)

    def edit_object(
        self, instance: ModelVersion, changes: dict[str, Any], reason: str
    ) -> ModelVersion | EvidenceProposal:
        return services.version_edit(
            actor=acting_user(self.request), version=instance, changes=changes, reason=reason
        )

    def get_queryset(self):
        versions = super().get_queryset()
        if self.action == "gate":
            # The gate reads the version and its model's name and kind, nothing of the team or
            # the registrant, and not the model card kept from the Hub.
            return versions.select_related(None).select_related("model").defer("hub_card")
        if self.action in ("list", "retrieve"):
            # The answer names the model and the registrant, never the team, and shows neither
            # the file manifest nor the Hub's model card: JSON that can be large to decode.
            return (
                versions.select_related(None)
                .select_related("model", "registered_by")
                .defer("artefact_manifest", "hub_card")
            )
        return versions

    def get_object(self) -> ModelVersion:
        # The list's filters (django-filter, search, ordering) cost a fifth of a read and
        # cannot change which version an id or MODEL@VERSION names.
        version = version_in(self.get_queryset(), self.kwargs["pk"])
        if version is None:
            raise Http404
        self.check_object_permissions(self.request, version)
        return version

    def _version(self) -> ModelVersion:
        return self.get_object()

    @extend_schema(
        parameters=[serializers.GateQuerySerializer],
        responses={200: answers.GateAnswerSerializer},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def gate(self, request, pk=None):
        """May this version enter `stage`? Every check with its reasons; changes nothing."""
        query = parsed_query(serializers.GateQuerySerializer, request)
        version = self._version()
        with read_memo():  # the checks and the redaction walk the same lineage once
            evaluation = gate_evaluate(version=version, actor=request.user, **query)
            return Response(redacted_for(request.user, version, evaluation.to_dict()))

    @extend_schema(
        request=serializers.PromoteSerializer,
        responses={
            200: serializers.GateDecisionSerializer,
            409: answers.gate_refusal(serializers.GateDecisionSerializer()),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def promote(self, request, pk=None):
        """Run the gate with the version locked and move it if every required check passes.

        A refusal answers 409 with the recorded decision and every failing reason.
        """
        data = serializers.PromoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = self._version()
        decision = services.version_promote(
            actor=acting_user(request), version=version, **data.validated_data
        )
        body = redacted_for(
            request.user, version, serializers.GateDecisionSerializer(decision).data
        )
        if decision.passed:
            return Response(body)
        failing = failing_checks(body["results"])
        message = "Promotion refused: " + "; ".join(
            f"{r['check']}: {' / '.join(r['reasons']) or 'failed'}" for r in failing
        )
        return Response(
            {"error": {"status": 409, "code": "gate_failed", "message": message, "decision": body}},
            status=409,
        )

    @extend_schema(responses={200: serializers.ComplianceStatusSerializer})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def compliance(self, request, pk=None):
        """The version's current compliance, recomputed now: does it still pass the gate of its
        stage (else out of compliance, with the reasons), and the next one it wants?"""
        version = self._version()
        status = services.compliance_recheck(version_ids=[version.pk])
        # An archived version is judged by no gate: the same fields, with no state.
        unjudged = ComplianceStatus(  # never saved: a stored status always has a state
            version=version,
            stage=version.stage,
            state=None,  # type: ignore[misc]
        )
        data = serializers.ComplianceStatusSerializer((status or [unjudged])[0]).data
        return Response(redacted_for(request.user, version, data))

    @extend_schema(responses={200: serializers.ProposalSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def proposals(self, request, pk=None):
        """Changes to this version's evidence proposed for a compliance conclusion."""
        return target_proposals(request, version=self._version())

    @extend_schema(responses={200: serializers.GateDecisionSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def decisions(self, request, pk=None):
        version = self._version()
        decisions = GateDecision.objects.filter(version=version).select_related(
            "actor", "version", "version__model"
        )[:100]
        data = serializers.GateDecisionSerializer(decisions, many=True).data
        return Response(redacted_for(request.user, version, data))

    @extend_schema(methods=["GET"], responses={200: serializers.ApprovalSerializer(many=True)})
    @extend_schema(
        methods=["POST"],
        request=serializers.ApprovalInputSerializer,
        responses={201: serializers.ApprovalSerializer},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], pagination_class=None)
    def approvals(self, request, pk=None):
        version = self._version()
        if request.method == "GET":
            approvals = Approval.objects.filter(version=version).select_related("approver")
            return Response(serializers.ApprovalSerializer(approvals, many=True).data)
        data = serializers.ApprovalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approval = services.approval_record(
            actor=acting_user(request), version=version, **data.validated_data
        )
        return Response(serializers.ApprovalSerializer(approval).data, status=201)

    @extend_schema(methods=["GET"], responses={200: serializers.WaiverSerializer(many=True)})
    @extend_schema(
        methods=["POST"],
        request=serializers.WaiverInputSerializer,
        responses={201: serializers.WaiverSerializer},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[], pagination_class=None)
    def waivers(self, request, pk=None):
        version = self._version()
        if request.method == "GET":
            waivers = CheckWaiver.objects.filter(version=version).select_related("granted_by")
            return Response(serializers.WaiverSerializer(waivers, many=True).data)
        data = serializers.WaiverInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        waiver = services.check_waiver_grant(
            actor=acting_user(request),
            version=version,
            check_name=data.validated_data["check"],
            reason=data.validated_data["reason"],
            expires_at=data.validated_data["expires_at"],
        )
        return Response(serializers.WaiverSerializer(waiver).data, status=201)


class StagePolicyViewSet(viewsets.ReadOnlyModelViewSet):
    """The stage policies (edited by compliance staff in the admin)."""

    permission_classes = [IsAuthenticated]
    serializer_class = serializers.StagePolicySerializer
    queryset = StagePolicy.objects.select_related("updated_by")
    pagination_class = None


class DatasetViewSet(CatalogueViewSet):
    serializer_class = serializers.DatasetSerializer
    update_serializer_class = serializers.DatasetUpdateSerializer
    visible = staticmethod(datasets_visible_to)
    filterset_class = DatasetFilter
    search_fields = ["name", "description", "hub_id"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def create_object(self, data: dict[str, Any]) -> Dataset:
        return services.dataset_create(actor=acting_user(self.request), **data)

    def update_object(self, instance: Dataset, changes: dict[str, Any]) -> Dataset:
        return services.dataset_update(
            actor=acting_user(self.request), dataset=instance, changes=changes
        )


@extend_schema_view(
    partial_update=extend_schema(
        responses={200: serializers.DatasetVersionSerializer, 202: serializers.ProposedSerializer}
    )
)
class DatasetVersionViewSet(ProposingUpdateMixin, CatalogueViewSet):
    serializer_class = serializers.DatasetVersionSerializer
    update_serializer_class = serializers.DatasetVersionUpdateSerializer
    visible = staticmethod(dataset_versions_visible_to)
    filterset_class = DatasetVersionFilter
    search_fields = ["version", "dataset__name"]
    ordering_fields = ["registered_at", "version", "size_bytes"]

    def create_object(self, data: dict[str, Any]) -> DatasetVersion:
        return services.dataset_version_create(actor=acting_user(self.request), **data)

    def edit_object(
        self, instance: DatasetVersion, changes: dict[str, Any], reason: str
    ) -> DatasetVersion | EvidenceProposal:
        return services.dataset_version_edit(
            actor=acting_user(self.request),
            dataset_version=instance,
            changes=changes,
            reason=reason,
        )

    @extend_schema(responses={200: serializers.ProposalSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def proposals(self, request, pk=None):
        """Changes to this dataset version proposed for a compliance conclusion."""
        return target_proposals(request, dataset_version=self.get_object())


@extend_schema(responses={200: answers.MeSerializer})
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def me(request):
    """Who the token belongs to: username, teams and whether they are compliance staff."""
    user = request.user
    return Response(
        {
            "username": user.username,
            "teams": sorted(user.teams.values_list("slug", flat=True)),
            "compliance": is_compliance(user),
        }
    )
