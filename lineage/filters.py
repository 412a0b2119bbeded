"""Hold filters, and the lineage query parameters lineage contributes to `/api/v1/versions/`."""

import django_filters

from lineage.models import Hold
from lineage.selectors import descendant_ids, trained_on_ids
from registry.api.base import IdFilter
from registry.plugins import VersionListFilter


def _descends_from(queryset, name, value):
    return queryset.filter(pk__in=descendant_ids(value))


def _trained_on(queryset, name, value):
    return queryset.filter(pk__in=trained_on_ids(value))


VERSION_FILTERS = (
    VersionListFilter(
        "descends_from",
        IdFilter(
            method=_descends_from,
            label="Versions derived (directly or not) from this version id.",
        ),
    ),
    VersionListFilter(
        "trained_on",
        IdFilter(
            method=_trained_on,
            label="Versions trained on this dataset version id (train or validation role), "
            "directly or through an ancestor.",
        ),
    ),
)


class HoldFilter(django_filters.FilterSet):
    active = django_filters.BooleanFilter(field_name="lifted_at", lookup_expr="isnull")
    version = IdFilter(field_name="version_id")
    model = django_filters.CharFilter(field_name="version__model__name")

    class Meta:
        model = Hold
        fields = ["active", "version", "model", "category"]
