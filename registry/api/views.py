from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from registry import services
from registry.api import serializers
from registry.filters import DatasetFilter, DatasetVersionFilter, ModelFilter, VersionFilter
from registry.selectors import (
    dataset_versions_visible_to,
    datasets_visible_to,
    is_compliance,
    models_visible_to,
    teams_visible_to,
    versions_visible_to,
)


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
    update_serializer_class = None
    visible = None

    def get_queryset(self):
        return type(self).visible(self.request.user)

    def get_serializer_class(self):
        if self.action == "partial_update":
            return self.update_serializer_class
        return self.serializer_class

    # Subclasses define create_object(data) and update_object(instance, changes).
    def perform_create(self, serializer):
        serializer.instance = self.create_object(dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = self.update_object(serializer.instance, dict(serializer.validated_data))


class TeamViewSet(CatalogueViewSet):
    serializer_class = serializers.TeamSerializer
    update_serializer_class = serializers.TeamUpdateSerializer
    visible = staticmethod(lambda user: teams_visible_to(user).prefetch_related("members"))
    search_fields = ["slug", "name"]
    ordering_fields = ["slug", "name", "created_at"]

    def create_object(self, data):
        return services.team_create(actor=self.request.user, **data)

    def update_object(self, instance, changes):
        return services.team_update(actor=self.request.user, team=instance, changes=changes)


class ModelViewSet(CatalogueViewSet):
    serializer_class = serializers.ModelSerializer
    update_serializer_class = serializers.ModelUpdateSerializer
    visible = staticmethod(models_visible_to)
    filterset_class = ModelFilter
    search_fields = ["name", "description", "task"]
    ordering_fields = ["name", "created_at", "updated_at", "kind"]

    def create_object(self, data):
        return services.model_create(actor=self.request.user, **data)

    def update_object(self, instance, changes):
        return services.model_update(actor=self.request.user, model=instance, changes=changes)


class VersionViewSet(CatalogueViewSet):
    serializer_class = serializers.VersionSerializer
    update_serializer_class = serializers.VersionUpdateSerializer
    visible = staticmethod(versions_visible_to)
    filterset_class = VersionFilter
    search_fields = ["version", "model__name", "description"]
    ordering_fields = ["registered_at", "updated_at", "version", "stage", "risk_tier"]

    def create_object(self, data):
        return services.version_create(actor=self.request.user, **data)

    def update_object(self, instance, changes):
        return services.version_update(actor=self.request.user, version=instance, changes=changes)


class DatasetViewSet(CatalogueViewSet):
    serializer_class = serializers.DatasetSerializer
    update_serializer_class = serializers.DatasetUpdateSerializer
    visible = staticmethod(datasets_visible_to)
    filterset_class = DatasetFilter
    search_fields = ["name", "description", "hub_id"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def create_object(self, data):
        return services.dataset_create(actor=self.request.user, **data)

    def update_object(self, instance, changes):
        return services.dataset_update(actor=self.request.user, dataset=instance, changes=changes)


class DatasetVersionViewSet(CatalogueViewSet):
    serializer_class = serializers.DatasetVersionSerializer
    update_serializer_class = serializers.DatasetVersionUpdateSerializer
    visible = staticmethod(dataset_versions_visible_to)
    filterset_class = DatasetVersionFilter
    search_fields = ["version", "dataset__name"]
    ordering_fields = ["registered_at", "version", "size_bytes"]

    def create_object(self, data):
        return services.dataset_version_create(actor=self.request.user, **data)

    def update_object(self, instance, changes):
        return services.dataset_version_update(
            actor=self.request.user, dataset_version=instance, changes=changes
        )


@extend_schema(responses={200: dict})
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
