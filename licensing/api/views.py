"""Licensing endpoints. Thin: parse, call one service or selector, present."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing import selectors, services
from licensing.api.serializers import (
    HubLicenceMappingSerializer,
    LicenceCheckQuerySerializer,
    LicenceDetailSerializer,
    LicencePolicySerializer,
    LicenceSerializer,
    LicenceWaiverInputSerializer,
    LicenceWaiverSerializer,
    PolicyQuerySerializer,
)
from licensing.exports import FORMATS, version_export
from licensing.filters import LicenceFilter, LicenceWaiverFilter
from licensing.models import LicencePolicyRevision
from registry.api.base import acting_user, parsed_query, visible_version
from registry.errors import InvalidInput, NotFound
from registry.selectors import version_by_ref


class LicenceViewSet(viewsets.ReadOnlyModelViewSet):
    """The licence catalogue: every SPDX licence and the curated ML LicenseRefs, with their
    category, review flag and (for curated ones) clause-cited terms."""

    permission_classes = [IsAuthenticated]
    lookup_field = "spdx_id"
    lookup_value_regex = "[^/]+"
    filterset_class = LicenceFilter
    search_fields = ["spdx_id", "name"]
    ordering_fields = ["spdx_id", "name", "category"]

    def get_queryset(self):
        if self.action == "retrieve":
            return selectors.licence_detail_queryset()
        return selectors.licence_list()

    def get_serializer_class(self):
        return LicenceDetailSerializer if self.action == "retrieve" else LicenceSerializer

    def get_object(self):
        licence = self.get_queryset().filter(spdx_id__iexact=self.kwargs[self.lookup_field]).first()
        if licence is None:
            raise NotFound(
                f"No licence '{self.kwargs[self.lookup_field]}' in the catalogue; search with "
                "/api/v1/licences/?search=..."
            )
        return licence


class HubLicenceViewSet(viewsets.ReadOnlyModelViewSet):
    """What each Hugging Face Hub licence id maps to; ambiguous ids need review."""

    permission_classes = [IsAuthenticated]
    serializer_class = HubLicenceMappingSerializer
    lookup_field = "hub_id"
    lookup_value_regex = "[^/]+"
    filterset_fields = ["review_required"]
    pagination_class = None

    def get_queryset(self):
        return selectors.hub_mappings()


class LicencePolicyView(APIView):
    """The active licence policy and its rules; `?revision=N` gives the rules at revision N."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[PolicyQuerySerializer],
        responses={
            200: LicencePolicySerializer,
            404: OpenApiResponse(description="No active policy, or no such revision."),
        },
    )
    def get(self, request):
        policy = selectors.active_policy()
        if policy is None:
            raise NotFound("No licence policy is active; run manage.py licences_sync.")
        revision = parsed_query(PolicyQuerySerializer, request).get("revision")
        body = LicencePolicySerializer(policy).data
        if revision is not None and revision != policy.revision:
            stored = LicencePolicyRevision.objects.filter(policy=policy, revision=revision).first()
            if stored is None:
                raise NotFound(f"The policy has no revision {revision} (now at {policy.revision}).")
            body |= {
                "revision": stored.revision,
                # Stored without it: at revision N, every rule stood as it was made at N.
                "rules": [rule | {"updated_at": stored.changed_at} for rule in stored.rules],
                "change": stored.change,
                "updated_at": stored.changed_at,
            }
        return Response(body)


class LicenceWaiverViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Waivers of licence-policy violations: compliance grants them with a reason, a named
    approver and an expiry; an expired or revoked waiver waives nothing."""

    permission_classes = [IsAuthenticated]
    serializer_class = LicenceWaiverSerializer
    filterset_class = LicenceWaiverFilter
    ordering_fields = ["created_at", "expires_at"]

    def get_queryset(self):
        return selectors.waivers_visible_to(self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return LicenceWaiverInputSerializer
        return LicenceWaiverSerializer

    @extend_schema(request=LicenceWaiverInputSerializer, responses={201: LicenceWaiverSerializer})
    def create(self, request, *args, **kwargs):
        serializer = LicenceWaiverInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = version_by_ref(request.user, data["version"])
        if version is None:
            raise InvalidInput.for_field(
                "version", f"No version '{data['version']}' that you can see."
            )
        waiver = services.licence_waiver_grant(
            actor=acting_user(request),
            version=version,
            rule_name=data["rule"],
            licence_id=data["licence"],
            reason=data["reason"],
            approver=data["approver"],
            expires_at=data["expires_at"],
        )
        return Response(LicenceWaiverSerializer(waiver).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: LicenceWaiverSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        waiver = services.licence_waiver_revoke(
            actor=acting_user(request), waiver=self.get_object()
        )
        return Response(LicenceWaiverSerializer(waiver).data)


class VersionLicenceCheckView(APIView):
    """May this version be used this way? Every violation of the licence policy, each naming
    its rule, licence, path, clause and fix; unwaived errors fail. Changes nothing."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[LicenceCheckQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: str):
        version = visible_version(request, pk)
        query = parsed_query(LicenceCheckQuerySerializer, request)
        return Response(
            selectors.licence_check(version=version, reader=request.user, **query).to_dict()
        )


class VersionObligationsView(APIView):
    """The version's own licence terms and every term it inherits from ancestors and training
    data, each with the path it came through."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: str):
        version = visible_version(request, pk)
        return Response(selectors.version_obligations(version, request.user).to_dict())


class VersionExportView(APIView):
    """The version and its lineage as an SPDX 2.3 document, an SPDX 3.0.1 AI/Dataset JSON-LD
    document, or a Hugging Face model card."""

    permission_classes = [IsAuthenticated]
    export_format = ""

    def get(self, request, pk: str):
        version = visible_version(request, pk)
        exported = FORMATS[self.export_format]
        text = version_export(user=request.user, version=version, format=exported.name)
        response = HttpResponse(text, content_type=exported.content_type)
        response["Content-Disposition"] = f'inline; filename="{exported.filename(version)}"'
        return response


def export_view(name: str) -> type[VersionExportView]:
    """The export view of one format; its schema names the media type that format answers in."""
    media_type = FORMATS[name].content_type.split(";")[0]
    body = OpenApiTypes.STR if media_type.startswith("text/") else OpenApiTypes.OBJECT
    document = OpenApiResponse(body, description=f"the {name} document")
    view = type(f"VersionExport_{name}_View", (VersionExportView,), {"export_format": name})
    return extend_schema(responses={(200, media_type): document})(view)
