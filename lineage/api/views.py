"""Lineage endpoints. Thin: parse, call one service or selector, present."""

from collections.abc import Callable, Mapping

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lineage import selectors, services
from lineage.api import answers
from lineage.api.serializers import (
    DepthQuerySerializer,
    EdgeCorrectionSerializer,
    EdgeSerializer,
    GraphQuerySerializer,
    HoldCreateSerializer,
    HoldLiftSerializer,
    HoldSerializer,
    ParentsInputSerializer,
    RecordedRunSerializer,
    RegistrationQuerySerializer,
    RegistrationSerializer,
    TrainingRunRecordSerializer,
    TrainingRunSerializer,
    graph_data,
    hold_data,
    path_data,
    plan_data,
    training_data,
)
from lineage.filters import HoldFilter
from lineage.models import DatasetRole
from registry.api.base import acting_user, parsed_query, visible_version
from registry.api.proposals import proposal_answer
from registry.api.serializers import ProposedSerializer, VersionSerializer
from registry.errors import InvalidInput, NotFound
from registry.models import EvidenceProposal, ModelVersion
from registry.selectors import dataset_versions_visible_to, version_by_ref, versions_visible_to


def registration_result(request: Request, registration: services.Registration) -> dict:
    """The registration as reads give it back, from what was written (no query)."""
    run = registration.run
    return {
        "version": VersionSerializer(registration.version, context={"request": request}).data,
        "parents": EdgeSerializer(registration.edges, many=True).data,
        "training_run": (
            RecordedRunSerializer(run, context={"datasets": registration.datasets}).data
            if run is not None
            else None
        ),
    }


class RegistrationView(APIView):
    """Register a version with its parents, training run and datasets in one transaction.

    A label the model already has is refused first (409); then every problem is answered at
    once (400, `fields`). `?dry_run=1` (or `"dry_run": true`) checks it all and writes nothing:
    200 with `"valid": true` and what would be registered.
    """

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[RegistrationQuerySerializer],
        request=RegistrationSerializer,
        responses={201: answers.RegisteredSerializer, 200: answers.RegistrationPlanSerializer},
    )
    def post(self, request):
        dry_run = parsed_query(RegistrationQuerySerializer, request)["dry_run"]
        body = request.data
        serializer = RegistrationSerializer(data=body)
        if not serializer.is_valid():
            if isinstance(body, Mapping) and all(
                isinstance(body.get(name), str) for name in ("model", "version")
            ):
                # No other fix makes a taken label registrable, so it is the first thing to say
                # (a valid body meets the same check first thing in the service).
                services.registration_label_check(
                    actor=acting_user(request), model=body["model"], version=body["version"]
                )
            raise serializers.ValidationError(serializer.errors)
        registration = dict(serializer.validated_data)
        if registration.pop("dry_run", False) or dry_run:
            plan = services.registration_check(actor=acting_user(request), **registration)
            return Response(plan_data(plan))
        written = services.registration_record(actor=acting_user(request), **registration)
        return Response(registration_result(request, written), status=status.HTTP_201_CREATED)


class VersionLineageView(APIView):
    """The lineage graph around a version as JSON (same graph as the admin picture)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[GraphQuerySerializer], responses={200: answers.LineageGraphSerializer}
    )
    def get(self, request, pk: str):
        version = visible_version(request, pk)
        query = parsed_query(GraphQuerySerializer, request)
        direction, depth = query["direction"], query.get("depth")
        graph = selectors.lineage_graph(
            request.user,
            version,
            ancestors=direction in ("both", "ancestors"),
            descendants=direction in ("both", "descendants"),
            ancestors_depth=depth,
            descendants_depth=depth,
        )
        return Response(graph_data(graph))


class RelativesView(generics.ListAPIView):
    """Versions related to one version, restricted to those the caller may see."""

    permission_classes = [IsAuthenticated]
    serializer_class = VersionSerializer
    filter_backends: list = []
    # The selector of the version's relatives: (reader, version, *, max_depth) -> versions.
    relatives: Callable[..., QuerySet[ModelVersion]]

    @extend_schema(parameters=[DepthQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        version = visible_version(self.request, self.kwargs["pk"])
        depth = parsed_query(DepthQuerySerializer, self.request).get("depth")
        return type(self).relatives(self.request.user, version, max_depth=depth)


class AncestorsView(RelativesView):
    """Every version this one was derived from (optionally within `depth` edges)."""

    relatives = staticmethod(selectors.ancestors_of)


class DescendantsView(RelativesView):
    """Every version derived from this one (optionally within `depth` edges)."""

    relatives = staticmethod(selectors.descendants_of)


class RootsView(generics.ListAPIView):
    """The root base models this version descends from (itself when it has no parents)."""

    permission_classes = [IsAuthenticated]
    serializer_class = VersionSerializer
    filter_backends: list = []

    def get_queryset(self):
        version = visible_version(self.request, self.kwargs["pk"])
        return selectors.roots_of(self.request.user, version)


class PathView(APIView):
    """How one version descends from another (either order): the shortest derivation chain."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("to", str, description="version id or MODEL@VERSION")],
        responses={200: answers.LineagePathSerializer},
    )
    def get(self, request, pk: str):
        version = visible_version(request, pk)
        ref = request.query_params.get("to", "")
        other = version_by_ref(request.user, ref) if ref else None
        if other is None:
            raise InvalidInput.for_field(
                "to", f"No version '{ref}' that you can see; give an id or MODEL@VERSION."
            )
        path = selectors.lineage_path(version, other)
        if path is None:
            raise NotFound(f"Neither of {version} and {other} descends from the other.")
        visible = set(
            versions_visible_to(request.user)
            .filter(pk__in=[v.pk for v in path.versions])
            .values_list("pk", flat=True)
        )
        return Response(path_data(path, visible))


class ParentsView(APIView):
    """A version's parents (GET), or record more of them (POST, all of a merge at once)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: EdgeSerializer(many=True)})
    def get(self, request, pk: str):
        version = visible_version(request, pk)
        return Response(
            EdgeSerializer(selectors.parent_edges(version, request.user), many=True).data
        )

    @extend_schema(
        request=ParentsInputSerializer,
        responses={201: EdgeSerializer(many=True), 202: ProposedSerializer},
    )
    def post(self, request, pk: str):
        """Add parents; on protected evidence an engineer's addition is proposed (202)."""
        version = visible_version(request, pk)
        serializer = ParentsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.edges_submit(
            actor=acting_user(request), child=version, **serializer.validated_data
        )
        if isinstance(result, EvidenceProposal):
            return proposal_answer(result)
        edges = EdgeSerializer(selectors.parent_edges(version, request.user), many=True).data
        return Response(edges, status=status.HTTP_201_CREATED)


class ParentEdgeView(APIView):
    """Correct one parent edge of a version: its relation (confirming or replacing what an
    import inferred), its parent, or both, with a reason for the audit log."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=EdgeCorrectionSerializer, responses={200: EdgeSerializer, 202: ProposedSerializer}
    )
    def patch(self, request, pk: str, edge_id: int):
        """Correct an edge; on protected evidence an engineer's correction is proposed (202)."""
        version = visible_version(request, pk)
        edge = selectors.parent_edges(version, request.user).filter(pk=edge_id).first()
        if edge is None:
            raise NotFound(f"{version} has no parent edge {edge_id}; list them with GET parents/.")
        serializer = EdgeCorrectionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.edge_correction_submit(
            actor=acting_user(request), edge=edge, **serializer.validated_data
        )
        if isinstance(result, EvidenceProposal):
            return proposal_answer(result)
        return Response(
            EdgeSerializer(selectors.parent_edges(version, request.user).get(pk=result.pk)).data
        )


class TrainingRunView(APIView):
    """The run that produced a version (GET), or record it once (POST)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: TrainingRunSerializer})
    def get(self, request, pk: str):
        version = visible_version(request, pk)
        run = selectors.training_run_of(version, request.user)
        if run is None:
            raise NotFound(f"No training run is recorded for {version}.")
        return Response(TrainingRunSerializer(run).data)

    @extend_schema(
        request=TrainingRunRecordSerializer,
        responses={201: TrainingRunSerializer, 202: ProposedSerializer},
    )
    def post(self, request, pk: str):
        """Record the run; on protected evidence an engineer's record is proposed (202)."""
        version = visible_version(request, pk)
        serializer = TrainingRunRecordSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.training_run_submit(
            actor=acting_user(request), version=version, **serializer.validated_data
        )
        if isinstance(result, EvidenceProposal):
            return proposal_answer(result)
        run = selectors.training_run_of(version, request.user)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)


class TrainingDataView(APIView):
    """The data a version was made with: its run's datasets (every role) and the Hub datasets
    its upstream model card declares as training data (references: no files, `sha256` null,
    licence from the dataset's card or NOASSERTION)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: answers.TrainingDataSerializer})
    def get(self, request, pk: str):
        version = visible_version(request, pk)
        links = selectors.training_data_of(version)
        visible = set(
            dataset_versions_visible_to(request.user)
            .filter(pk__in={link.dataset_version_id for link in links})
            .values_list("pk", flat=True)
        )
        return Response({"version": str(version), "datasets": training_data(links, visible)})


class VersionHoldsView(APIView):
    """Why a version is held: each active hold on it or on an ancestor, naming that version."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: answers.VersionHoldsSerializer})
    def get(self, request, pk: str):
        version = visible_version(request, pk)
        holds = list(selectors.active_holds_on(version.pk))
        visible = set(
            versions_visible_to(request.user)
            .filter(pk__in={hold.version_id for hold in holds})
            .values_list("pk", flat=True)
        )
        return Response(
            {
                "version": str(version),
                "held": bool(holds),
                "holds": [
                    hold_data(hold, for_version_id=version.pk, visible=hold.version_id in visible)
                    for hold in holds
                ],
            }
        )


class TrainedVersionSerializer(VersionSerializer):
    trained_directly = serializers.BooleanField(read_only=True)

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "trained_directly"]


class TrainedModelsView(generics.ListAPIView):
    """Versions trained on a dataset version: those whose run used it (`trained_directly`)
    and all their descendants. `role` (repeatable) picks roles; default train + validation."""

    permission_classes = [IsAuthenticated]
    serializer_class = TrainedVersionSerializer
    filter_backends: list = []

    @extend_schema(parameters=[OpenApiParameter("role", str, many=True, enum=DatasetRole.values)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        dataset_version = (
            dataset_versions_visible_to(self.request.user).filter(pk=self.kwargs["pk"]).first()
        )
        if dataset_version is None:
            raise Http404
        roles = self.request.query_params.getlist("role") or list(selectors.TRAINED_ON_ROLES)
        unknown = sorted(set(roles) - set(DatasetRole.values))
        if unknown:
            raise InvalidInput.for_field(
                "role", f"Unknown role {', '.join(unknown)}; use {', '.join(DatasetRole.values)}."
            )
        return selectors.trained_on(self.request.user, dataset_version, roles=roles)


class HoldViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Holds: compliance staff and the owning team place them; only compliance lifts them."""

    permission_classes = [IsAuthenticated]
    serializer_class = HoldSerializer
    filterset_class = HoldFilter
    ordering_fields = ["placed_at", "lifted_at"]
    search_fields = ["reason", "version__model__name"]

    def get_queryset(self):
        return selectors.holds_visible_to(self.request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return HoldCreateSerializer
        if self.action == "lift":
            return HoldLiftSerializer
        return HoldSerializer

    @extend_schema(request=HoldCreateSerializer, responses={201: HoldSerializer})
    def create(self, request, *args, **kwargs):
        serializer = HoldCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        ref = str(data.pop("version"))
        version = version_by_ref(request.user, ref)
        if version is None:
            raise InvalidInput.for_field("version", f"No version '{ref}' that you can see.")
        hold = services.hold_place(actor=acting_user(request), version=version, **data)
        return Response(self._detail(hold), status=status.HTTP_201_CREATED)

    def retrieve(self, request, *args, **kwargs):
        return Response(self._detail(self.get_object()))

    @extend_schema(request=HoldLiftSerializer, responses={200: HoldSerializer})
    @action(detail=True, methods=["post"])
    def lift(self, request, pk=None):
        hold = self.get_object()
        serializer = HoldLiftSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hold = services.hold_lift(
            actor=acting_user(request), hold=hold, reason=serializer.validated_data["reason"]
        )
        return Response(self._detail(hold))

    def _detail(self, hold) -> dict:
        return HoldSerializer(hold).data | {"held_versions": selectors.held_count(hold)}
