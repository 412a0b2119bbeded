"""Evidence-change proposals over the API: PATCH of a version or dataset version that could
weaken protected evidence answers 202 with a pending proposal; compliance staff outside the
owning team accept or reject it here."""

from typing import Any

import django_filters
from django.db.models import Model
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from registry import services
from registry.api import serializers
from registry.api.base import IdFilter, acting_user
from registry.models import EvidenceProposal, ProposalStatus
from registry.selectors import proposals_visible_to

PROPOSED = (
    "This change could weaken gate evidence that is protected, so it was recorded as proposal "
    "#{id} and nothing was changed yet. A compliance officer outside the owning team must "
    "accept it (POST /api/v1/proposals/{id}/accept/) before it takes effect; accepting it "
    "voids the approvals it touches."
)


def proposal_answer(proposal: EvidenceProposal) -> Response:
    """202 Accepted: the edit is recorded as a proposal, not applied."""
    return Response(
        {
            "message": PROPOSED.format(id=proposal.pk),
            "proposal": serializers.ProposalSerializer(proposal).data,
        },
        status=status.HTTP_202_ACCEPTED,
    )


class ProposingUpdateMixin:
    """PATCH through an `edit_object` that either applies the change (200 with the object) or
    records it as a proposal (202 with the proposal)."""

    edit_object: Any

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        view: Any = self
        instance = view.get_object()
        serializer = view.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        reason = changes.pop("reason", "")
        result: Model = view.edit_object(instance, changes, reason)
        if isinstance(result, EvidenceProposal):
            return proposal_answer(result)
        return Response(view.get_serializer(result).data)


def target_proposals(request: Request, **target: Any) -> Response:
    """The proposals on one version or dataset version the caller may see, newest first."""
    proposals = proposals_visible_to(request.user).filter(**target)[:100]
    return Response(serializers.ProposalSerializer(proposals, many=True).data)


class ProposalFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ProposalStatus.choices)
    version = IdFilter(field_name="version_id")
    dataset_version = IdFilter(field_name="dataset_version_id")

    class Meta:
        model = EvidenceProposal
        fields = ["status", "version", "dataset_version"]


class ProposalViewSet(viewsets.ReadOnlyModelViewSet):
    """Evidence-change proposals: compliance staff see every one, engineers their teams'."""

    permission_classes = [IsAuthenticated]
    serializer_class = serializers.ProposalSerializer
    filterset_class = ProposalFilter
    ordering_fields = ["proposed_at", "concluded_at"]

    def get_queryset(self):
        return proposals_visible_to(self.request.user)

    @extend_schema(
        request=serializers.ProposalConclusionSerializer,
        responses={200: serializers.ProposalSerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def accept(self, request, pk=None):
        """Make the proposed change (compliance staff outside the owning team)."""
        data = serializers.ProposalConclusionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = services.evidence_proposal_accept(
            actor=acting_user(request), proposal=self.get_object(), **data.validated_data
        )
        return Response(serializers.ProposalSerializer(proposal).data)

    @extend_schema(
        request=serializers.ProposalConclusionSerializer,
        responses={200: serializers.ProposalSerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def reject(self, request, pk=None):
        """Refuse the proposed change, saying why; the evidence stays as it is."""
        data = serializers.ProposalConclusionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = services.evidence_proposal_reject(
            actor=acting_user(request), proposal=self.get_object(), **data.validated_data
        )
        return Response(serializers.ProposalSerializer(proposal).data)
