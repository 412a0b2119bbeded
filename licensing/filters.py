import django_filters

from licensing.models import CATEGORY_CHOICES, TERM_TYPE_CHOICES, Licence, LicenceWaiver
from registry.api.base import IdFilter


class LicenceFilter(django_filters.FilterSet):
    category = django_filters.MultipleChoiceFilter(choices=CATEGORY_CHOICES)
    term_type = django_filters.ChoiceFilter(
        choices=TERM_TYPE_CHOICES,
        method="_with_term",
        label="Licences with a term of this type.",
    )
    hub_id = django_filters.CharFilter(field_name="hub_ids__hub_id", lookup_expr="iexact")
    licence_ref = django_filters.BooleanFilter(
        method="_licence_ref", label="Only LicenseRef- entries (true) or only SPDX ids (false)."
    )

    class Meta:
        model = Licence
        fields = [
            "category",
            "review_required",
            "curated",
            "deprecated",
            "compliance_override",
            "term_type",
            "hub_id",
            "licence_ref",
        ]

    def _with_term(self, queryset, name, value):
        return queryset.filter(terms__type=value).distinct()

    def _licence_ref(self, queryset, name, value):
        refs = queryset.filter(spdx_id__startswith="LicenseRef-")
        return refs if value else queryset.exclude(pk__in=refs.values("pk"))


class LicenceWaiverFilter(django_filters.FilterSet):
    version = IdFilter(field_name="version_id")
    rule = django_filters.CharFilter(field_name="rule_name")
    revoked = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = LicenceWaiver
        fields = ["version", "rule", "licence_id", "revoked"]
