import django_filters

from evaluators.models import EvaluationRun, EvaluationSuite
from registry.selectors import as_id


def _by_version_ref(queryset, name, value):
    """`?version=` takes an id or MODEL@VERSION."""
    if value.isdigit():
        pk = as_id(value)
        return queryset.filter(version_id=pk) if pk is not None else queryset.none()
    model, sep, label = value.rpartition("@")
    if not sep:
        return queryset.none()
    return queryset.filter(version__model__name=model, version__version=label)


def _by_suite_ref(queryset, name, value):
    """`?suite=` takes an id or a name."""
    if value.isdigit():
        pk = as_id(value)
        return queryset.filter(suite_id=pk) if pk is not None else queryset.none()
    return queryset.filter(suite__name=value)


class EvaluationRunFilter(django_filters.FilterSet):
    version = django_filters.CharFilter(method=_by_version_ref)
    model = django_filters.CharFilter(field_name="version__model__name")
    suite = django_filters.CharFilter(method=_by_suite_ref)
    requested_after = django_filters.IsoDateTimeFilter(field_name="requested_at", lookup_expr="gte")
    finished_after = django_filters.IsoDateTimeFilter(field_name="finished_at", lookup_expr="gte")

    class Meta:
        model = EvaluationRun
        fields = [
            "version",
            "model",
            "suite",
            "status",
            "device_requested",
            "queue",
            "evaluator",
            "artefact_digest",
            "requested_after",
            "finished_after",
        ]


class EvaluationSuiteFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug")
    name = django_filters.CharFilter(lookup_expr="icontains")
    dataset = django_filters.CharFilter(field_name="dataset_version__dataset__name")
    model = django_filters.CharFilter(field_name="models__name", distinct=True)

    class Meta:
        model = EvaluationSuite
        fields = ["team", "name", "dataset", "model", "task", "visibility"]
