from typing import Any

import django_filters
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

from registry.api.base import IdFilter
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel
from registry.plugins import VersionListFilter, plugins


def _licence_contains(queryset, name, value):
    return queryset.filter(
        Q(licence_declared__icontains=value) | Q(licence_concluded__icontains=value)
    )


class ModelFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug")
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = RegisteredModel
        fields = ["kind", "team", "visibility", "task", "name"]


class VersionFilter(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="model__name")
    model_id = IdFilter(field_name="model_id")
    kind = django_filters.CharFilter(field_name="model__kind")
    team = django_filters.CharFilter(field_name="model__team__slug")
    licence = django_filters.CharFilter(method=_licence_contains)
    registered_after = django_filters.IsoDateTimeFilter(
        field_name="registered_at", lookup_expr="gte"
    )

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "model_id",
            "version",
            "kind",
            "stage",
            "risk_tier",
            "team",
            "licence",
            "hub_repo_id",
            "artefact_digest",
        ]

    @classmethod
    def get_filters(cls) -> dict[str, Any]:
        """The core's filters and those other apps register (e.g. lineage's `descends_from`)."""
        # Read once, when the class is made: the apps must have registered theirs by then.
        if not apps.ready:
            raise ImproperlyConfigured("registry.filters was imported before the apps were ready")
        filters = super().get_filters()
        for contribution in plugins.contributions(VersionListFilter):
            if contribution.name in filters:
                raise ImproperlyConfigured(f"{contribution.name!r} is a built-in version filter")
            filters[contribution.name] = contribution.filter
        return filters


class DatasetFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug")
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Dataset
        fields = ["team", "name", "visibility", "hub_id"]


class DatasetVersionFilter(django_filters.FilterSet):
    dataset = django_filters.CharFilter(field_name="dataset__name")
    team = django_filters.CharFilter(field_name="dataset__team__slug")
    licence = django_filters.CharFilter(method=_licence_contains)

    class Meta:
        model = DatasetVersion
        fields = ["dataset", "version", "team", "licence", "contains_personal_data", "sha256"]
