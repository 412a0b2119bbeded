from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluators import services
from evaluators.api import serializers
from evaluators.filters import EvaluationRunFilter, EvaluationSuiteFilter
from evaluators.models import EvaluationSuite
from evaluators.selectors import runs_visible_to, suite_by_ref, suites_visible_to
from registry.api.base import acting_user, visible_version
from registry.api.views import CatalogueViewSet
from registry.errors import InvalidInput
from registry.selectors import version_by_ref


class EvaluationSuiteViewSet(CatalogueViewSet):
    """Evaluation suites: a pinned dataset, columns, metrics and the limits to meet."""

    serializer_class = serializers.EvaluationSuiteSerializer
    update_serializer_class = serializers.EvaluationSuiteUpdateSerializer
    visible = staticmethod(suites_visible_to)
    filterset_class = EvaluationSuiteFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]

    def create_object(self, data: dict[str, Any]) -> EvaluationSuite:
        return services.suite_create(actor=acting_user(self.request), **data)

    def update_object(self, instance: EvaluationSuite, changes: dict[str, Any]) -> EvaluationSuite:
        return services.suite_update(
            actor=acting_user(self.request), suite=instance, changes=changes
        )


class EvaluationRunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Evaluation runs: request one with POST, follow its progress, read its results."""

    permission_classes = [IsAuthenticated]
    serializer_class = serializers.EvaluationRunSerializer
    filterset_class = EvaluationRunFilter
    search_fields = ["version__model__name", "suite__name"]
    ordering_fields = ["requested_at", "finished_at", "status"]

    def get_queryset(self):
        return runs_visible_to(self.request.user)

    @extend_schema(
        request=serializers.EvaluationRunRequestSerializer,
        responses={
            201: serializers.EvaluationRunSerializer,
            200: OpenApiResponse(
                serializers.EvaluationRunSerializer,
                description="A run of this version on this suite is already queued or running.",
            ),
        },
    )
    def create(self, request):
        """Queue an evaluation of a version's exact weights on a suite (`device`: auto, cpu or
        cuda; cuda goes to the GPU workers). Answers before the evaluation runs, also with no
        broker (it runs in a thread of this process then)."""
        data = serializers.EvaluationRunRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = acting_user(request)
        version = version_by_ref(user, data.validated_data["version"].strip())
        if version is None:
            raise InvalidInput.for_field(
                "version",
                f"No version {data.validated_data['version']} that you can see; name it as "
                "MODEL@VERSION or by id.",
            )
        suite = suite_by_ref(user, data.validated_data["suite"])
        if suite is None:
            raise InvalidInput.for_field(
                "suite",
                f"No evaluation suite {data.validated_data['suite']} that you can see; list "
                "them with GET /api/v1/evaluation-suites/.",
            )
        run, created = services.run_request(
            actor=user, version=version, suite=suite, device=data.validated_data["device"]
        )
        run = self.get_queryset().get(pk=run.pk)
        return Response(
            self.get_serializer(run).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=None, responses={200: serializers.EvaluationRunSerializer})
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def cancel(self, request, pk=None):
        """Cancel a queued or running evaluation (409 once it has finished)."""
        run = services.run_cancel(actor=acting_user(request), run=self.get_object())
        return Response(self.get_serializer(self.get_queryset().get(pk=run.pk)).data)


class VersionEvaluationsView(APIView):
    """Evaluate a version on several suites at once (default: every suite attached to its
    model). Answers 202 at once with each run, queued or already queued or running (`created`
    says which); follow them at /api/v1/evaluation-runs/{id}/."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=serializers.VersionEvaluationsRequestSerializer,
        responses={202: serializers.VersionEvaluationsSerializer},
    )
    def post(self, request, pk: str):
        version = visible_version(request, pk)
        data = serializers.VersionEvaluationsRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        names = data.validated_data.get("suites")
        suites = None
        if names is not None:
            found = [suite_by_ref(request.user, name) for name in names]
            unknown = [name for name, suite in zip(names, found, strict=True) if suite is None]
            if unknown:
                raise InvalidInput(
                    f"No evaluation suite {', '.join(unknown)} that you can see; list them with "
                    "GET /api/v1/evaluation-suites/.",
                    fields={
                        f"suites[{index}]": [f"No evaluation suite {name} that you can see."]
                        for index, name in enumerate(names)
                        if found[index] is None
                    },
                )
            suites = [suite for suite in found if suite is not None]
        requested = services.runs_request(
            actor=acting_user(request),
            version=version,
            suites=suites,
            device=data.validated_data["device"],
        )
        runs = runs_visible_to(request.user).in_bulk([run.pk for run, _ in requested])
        body = [
            serializers.EvaluationRunSerializer(runs[run.pk]).data | {"created": created}
            for run, created in requested
        ]
        return Response({"version": str(version), "runs": body}, status=status.HTTP_202_ACCEPTED)
