"""API shapes for lineage. Serializers parse and present; the rules live in services."""

import itertools
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lineage.models import (
    DataLink,
    DatasetRole,
    Hold,
    HoldCategory,
    LineageEdge,
    Method,
    Relation,
    TrainingDataset,
    TrainingRun,
)
from lineage.selectors import LineageGraph, LineagePath
from lineage.services import (
    MAX_DATASETS,
    MAX_PARENTS,
    DatasetUse,
    ParentSpec,
    RegistrationPlan,
)
from registry.api.base import BuiltFieldsMixin, StrictFieldsMixin
from registry.models import ModelKind, RiskTier, Visibility


class StrictMixin(StrictFieldsMixin):
    """Lineage's inputs have no read-only fields, so a refused key is simply unknown."""

    unknown_field_hint = "Unknown field. Known fields: {fields}."


@extend_schema_field(
    {"oneOf": [{"type": "integer"}, {"type": "string", "example": "acme/support-intent@v1"}]}
)
class RefField(serializers.Field):
    """A reference to a version or dataset version: numeric id or `NAME@LABEL`."""

    default_error_messages = {
        "invalid": "Give a numeric id or a NAME@VERSION reference.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and not (data.strip().isdigit() or "@" in data):
            self.fail("invalid")
        return data.strip() if isinstance(data, str) else data

    def to_representation(self, value):
        return value


class ParentInputSerializer(StrictMixin, serializers.Serializer):
    version = RefField()
    relation = serializers.ChoiceField(choices=Relation.choices)

    def to_internal_value(self, data) -> ParentSpec:
        return ParentSpec(**super().to_internal_value(data))


def proposal_reason() -> serializers.CharField:
    """Why: kept with the proposal when the change needs a compliance conclusion."""
    return serializers.CharField(max_length=4000, required=False, allow_blank=True)


class ParentsInputSerializer(StrictMixin, serializers.Serializer):
    parents = serializers.ListSerializer(
        child=ParentInputSerializer(), min_length=1, max_length=MAX_PARENTS
    )
    reason = proposal_reason()


class DatasetUseInputSerializer(StrictMixin, serializers.Serializer):
    dataset_version = RefField()
    role = serializers.ChoiceField(choices=DatasetRole.choices)

    def to_internal_value(self, data) -> DatasetUse:
        return DatasetUse(**super().to_internal_value(data))


class ComputeSerializer(StrictMixin, serializers.Serializer):
    device_kind = serializers.CharField(max_length=128, required=False, allow_blank=True)
    device_count = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    gpu_hours = serializers.FloatField(min_value=0, required=False, allow_null=True)
    energy_kwh = serializers.FloatField(min_value=0, required=False, allow_null=True)


class TrainingRunInputSerializer(StrictMixin, serializers.Serializer):
    method = serializers.ChoiceField(choices=Method.choices)
    # Shape and types are checked by the service against the method's JSON Schema.
    hyperparameters = serializers.JSONField(required=False)
    datasets = serializers.ListSerializer(
        child=DatasetUseInputSerializer(), required=False, max_length=MAX_DATASETS
    )
    code_repository = serializers.CharField(max_length=512, required=False, allow_blank=True)
    code_revision = serializers.CharField(max_length=64, required=False, allow_blank=True)
    framework_versions = serializers.JSONField(required=False)
    compute = ComputeSerializer(required=False)
    started_at = serializers.DateTimeField(required=False, allow_null=True)
    finished_at = serializers.DateTimeField(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    run_by = serializers.CharField(max_length=150, required=False, allow_blank=True)

    def to_internal_value(self, data) -> dict[str, Any]:
        """Service keyword arguments: compute flattened into its four fields."""
        values = dict(super().to_internal_value(data))
        compute = values.pop("compute", {})
        return {**values, **compute}


class TrainingRunRecordSerializer(TrainingRunInputSerializer):
    """A run recorded on its own (not with a registration), which may become a proposal."""

    reason = proposal_reason()


class CreateModelSerializer(StrictMixin, serializers.Serializer):
    team = serializers.CharField(max_length=64)
    kind = serializers.ChoiceField(choices=ModelKind.choices, required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    task = serializers.CharField(max_length=64, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)


class RegistrationSerializer(StrictMixin, serializers.Serializer):
    model = serializers.CharField(max_length=193)
    version = serializers.CharField(max_length=64)
    create_model = CreateModelSerializer(required=False)
    # Exactly one artefact source; `version_register` checks and inspects it.
    artefact_upload = serializers.CharField(max_length=64, required=False)
    artefact_path = serializers.CharField(max_length=4096, required=False)
    artefact_digest = serializers.CharField(max_length=64, required=False)
    parents = serializers.ListSerializer(
        child=ParentInputSerializer(), required=False, max_length=MAX_PARENTS
    )
    training_run = TrainingRunInputSerializer(required=False)
    # Version attributes, validated by the version service.
    description = serializers.CharField(required=False, allow_blank=True)
    licence_declared = serializers.CharField(max_length=512, required=False, allow_blank=True)
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices, required=False)
    intended_use = serializers.CharField(required=False, allow_blank=True)
    out_of_scope_uses = serializers.CharField(required=False, allow_blank=True)
    known_limitations = serializers.CharField(required=False, allow_blank=True)
    uses_sensitive_personal_data = serializers.BooleanField(required=False)
    domain = serializers.CharField(max_length=128, required=False, allow_blank=True)
    dry_run = serializers.BooleanField(required=False, help_text="Check it all; write nothing.")


class RegistrationQuerySerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        default=False, help_text="Check everything and write nothing (the body may say it too)."
    )


class EdgeSerializer(BuiltFieldsMixin, serializers.ModelSerializer):
    child_ref = serializers.CharField(source="child", read_only=True)
    parent_ref = serializers.CharField(source="parent", read_only=True)
    parent_unresolved = serializers.BooleanField(source="parent.unresolved", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    relation_confirmed_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = LineageEdge
        fields = [
            "id",
            "child",
            "child_ref",
            "parent",
            "parent_ref",
            "relation",
            "relation_inferred",
            "relation_evidence",
            "relation_confirmed_by",
            "relation_confirmed_at",
            "parent_digest",
            "parent_newest",
            "parent_unresolved",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: LineageEdge) -> dict[str, Any]:
        data = super().to_representation(instance)
        if getattr(instance, "parent_visible", True):
            return data
        # Counted, not named: the reader learns that a parent exists and how it was used.
        hidden = f"model version #{instance.parent_id} (not visible to you)"
        return data | {"parent_ref": hidden, "parent_digest": "", "relation_evidence": []}


class EdgeCorrectionSerializer(StrictMixin, serializers.Serializer):
    relation = serializers.ChoiceField(choices=Relation.choices, required=False)
    # DRF's metaclass moves declared fields off the class, so this does not shadow Field.parent.
    parent = RefField(required=False)  # type: ignore[assignment]
    reason = serializers.CharField(max_length=2000)


class TrainingDatasetSerializer(BuiltFieldsMixin, serializers.ModelSerializer):
    ref = serializers.CharField(source="dataset_version", read_only=True)
    licence = serializers.CharField(source="dataset_version.licence_declared", read_only=True)

    class Meta:
        model = TrainingDataset
        fields = ["dataset_version", "ref", "role", "sha256", "licence"]
        read_only_fields = fields

    def to_representation(self, instance: TrainingDataset) -> dict[str, Any]:
        data = super().to_representation(instance)
        if getattr(instance, "dataset_visible", True):
            return data
        hidden = f"dataset version #{instance.dataset_version_id} (not visible to you)"
        return data | {"ref": hidden, "sha256": ""}


class TrainingRunSerializer(BuiltFieldsMixin, serializers.ModelSerializer):
    version_ref = serializers.CharField(source="version", read_only=True)
    datasets = TrainingDatasetSerializer(many=True, read_only=True)
    compute = serializers.SerializerMethodField()
    run_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "version",
            "version_ref",
            "method",
            "hyperparameters",
            "datasets",
            "code_repository",
            "code_revision",
            "framework_versions",
            "compute",
            "started_at",
            "finished_at",
            "notes",
            "run_by",
            "recorded_by",
            "recorded_at",
        ]
        read_only_fields = fields

    def get_compute(self, run: TrainingRun) -> dict[str, Any]:
        return {
            "device_kind": run.device_kind,
            "device_count": run.device_count,
            "gpu_hours": run.gpu_hours,
            "energy_kwh": run.energy_kwh,
        }


class RecordedRunSerializer(TrainingRunSerializer):
    """A run just recorded, with its dataset links as the service wrote them (in the context),
    rather than read back."""

    datasets = serializers.SerializerMethodField()  # type: ignore[assignment]

    def get_datasets(self, run: TrainingRun) -> Any:
        return TrainingDatasetSerializer(self.context["datasets"], many=True).data


class HoldSerializer(serializers.ModelSerializer):
    version_ref = serializers.CharField(source="version", read_only=True)
    placed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    lifted_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = Hold
        fields = [
            "id",
            "version",
            "version_ref",
            "category",
            "reason",
            "reference",
            "active",
            "placed_by",
            "placed_at",
            "lifted_by",
            "lifted_at",
            "lift_reason",
        ]
        read_only_fields = fields


class HoldCreateSerializer(StrictMixin, serializers.Serializer):
    version = RefField()
    category = serializers.ChoiceField(choices=HoldCategory.choices, required=False)
    reason = serializers.CharField()
    reference = serializers.CharField(max_length=512, required=False, allow_blank=True)


class HoldLiftSerializer(StrictMixin, serializers.Serializer):
    reason = serializers.CharField()


class GraphQuerySerializer(StrictMixin, serializers.Serializer):
    direction = serializers.ChoiceField(
        choices=["both", "ancestors", "descendants"], default="both"
    )
    depth = serializers.IntegerField(min_value=0, max_value=1000, required=False)


class DepthQuerySerializer(StrictMixin, serializers.Serializer):
    depth = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    # Pagination parameters pass through.
    limit = serializers.IntegerField(required=False)
    offset = serializers.IntegerField(required=False)


def _hidden_summary(versions: int, datasets: int) -> dict[str, Any]:
    """What a placeholder stands for: how many versions and datasets the caller cannot see."""
    parts = [
        f"{count} {noun}{'s' * (count != 1)}"
        for count, noun in ((versions, "version"), (datasets, "dataset version"))
        if count
    ]
    return {
        "versions": versions,
        "datasets": datasets,
        "summary": f"{' and '.join(parts)} you cannot see" if parts else "",
    }


def _version_node(graph: LineageGraph, version_id: int, key: str) -> dict[str, Any]:
    version = graph.versions[version_id]
    holds = graph.holds.get(version_id, [])
    node: dict[str, Any] = {
        "id": key,
        "kind": "version",
        "generation": graph.generation.get(version_id),
        "held": bool(holds),
        # Only holds placed on versions the caller sees are named.
        "holds": [hold.pk for hold in holds if hold.version_id in graph.visible_ids],
        "focus": version_id == graph.focus.pk,
    }
    if version_id not in graph.visible_ids:
        # A placeholder: no id to look up, no name, digest or licence.
        return node | {"hidden": True, "version_id": None, "ref": None}
    return node | {
        "hidden": False,
        "version_id": version_id,
        "ref": str(version),
        "model_kind": version.model.kind,
        "team": version.model.team.slug,
        "stage": version.stage,
        "artefact_digest": version.artefact_digest,
        "licence_declared": version.licence_declared,
        "unresolved": version.unresolved,
    }


def hold_data(hold: Hold, *, for_version_id: int | None = None, visible: bool = True):
    """A hold; one placed on a version the caller cannot see says only that it holds (and
    since when), never on what, why or by whom."""
    inherited = for_version_id is not None and hold.version_id != for_version_id
    if not visible:
        return {
            "id": None,
            "on_version_id": None,
            "on": None,
            "inherited": inherited,
            "category": None,
            "reason": None,
            "reference": None,
            "placed_by": None,
            "placed_at": hold.placed_at,
        }
    return {
        "id": hold.pk,
        "on_version_id": hold.version_id,
        "on": str(hold.version),
        "inherited": inherited,
        "category": hold.category,
        "reason": hold.reason,
        "reference": hold.reference,
        "placed_by": hold.placed_by.username,
        "placed_at": hold.placed_at,
    }


def training_data(links: list[DataLink], visible: set[int]) -> list[dict[str, Any]]:
    """A version's training data; dataset versions the caller cannot see are placeholders with
    neither name nor digest nor licence."""
    rows = []
    for link in links:
        dataset_version = link.dataset_version
        shown = dataset_version.pk in visible
        rows.append(
            {
                "dataset_version_id": dataset_version.pk if shown else None,
                "ref": str(dataset_version) if shown else None,
                "role": link.role,
                "declared_by_card": link.declared,
                "reference": dataset_version.reference,
                "sha256": (link.sha256 or None) if shown else None,
                "uri": dataset_version.uri if shown else None,
                "licence_declared": dataset_version.licence_declared if shown else None,
                "licence_concluded": dataset_version.licence_concluded if shown else None,
            }
        )
    return rows


def graph_data(graph: LineageGraph) -> dict[str, Any]:
    """The graph as JSON: versions and datasets as nodes; derivation edges (parent → child,
    with relation and pinned digest) and training-data edges (dataset → version, with role).
    What the caller cannot see are placeholders (`hidden-N`) counted under `hidden`."""
    keys: dict[str, str] = {}
    placeholders = itertools.count(1)

    def key_of(kind: str, pk: int, visible: bool) -> str:
        real = f"{kind}{pk}"
        if real not in keys:
            keys[real] = real if visible else f"hidden-{next(placeholders)}"
        return keys[real]

    def version_key(version_id: int) -> str:
        return key_of("v", version_id, version_id in graph.visible_ids)

    nodes = [
        _version_node(graph, version_id, version_key(version_id)) for version_id in graph.versions
    ]
    edges: list[dict[str, Any]] = [
        {
            "source": version_key(edge.parent_id),
            "target": version_key(edge.child_id),
            "kind": "derivation",
            "relation": edge.relation,
            "relation_inferred": edge.relation_inferred,
            "relation_confirmed": edge.relation_confirmed_by_id is not None,
            "parent_digest": edge.parent_digest if edge.parent_id in graph.visible_ids else None,
        }
        for edge in graph.edges
    ]
    seen_datasets: set[int] = set()
    hidden_datasets = 0
    for link in graph.datasets:
        dataset_version = link.dataset_version
        visible = dataset_version.pk in graph.visible_dataset_ids
        key = key_of("d", dataset_version.pk, visible)
        if dataset_version.pk not in seen_datasets:
            seen_datasets.add(dataset_version.pk)
            hidden_datasets += not visible
            nodes.append(
                {
                    "id": key,
                    "kind": "dataset",
                    "hidden": not visible,
                    "dataset_version_id": dataset_version.pk if visible else None,
                    "ref": str(dataset_version) if visible else None,
                    "sha256": dataset_version.sha256 if visible else None,
                    "licence_declared": dataset_version.licence_declared if visible else None,
                    # A Hub dataset an upstream card names: no files, so no digest.
                    "reference": dataset_version.reference,
                }
            )
        edges.append(
            {
                "source": key,
                "target": version_key(link.user_version_id),
                "kind": "training_data",
                "role": link.role,
                "sha256": link.sha256 if visible else None,
                "declared_by_card": link.declared,
            }
        )
    holds = {hold.pk: hold for held in graph.holds.values() for hold in held}
    return {
        "focus": version_key(graph.focus.pk),
        "truncated": graph.truncated,
        "nodes": nodes,
        "edges": edges,
        "holds": [
            hold_data(hold, visible=hold.version_id in graph.visible_ids) for hold in holds.values()
        ],
        "hidden": _hidden_summary(len(graph.versions) - len(graph.visible_ids), hidden_datasets),
    }


def path_data(path: LineagePath, visible_ids: set[int]) -> dict[str, Any]:
    """The path; versions the caller cannot see have neither id nor name, and the digests
    pinned on edges from them are left out."""

    def shown(version_id: int) -> int | None:
        return version_id if version_id in visible_ids else None

    def ref(version) -> str | None:
        return str(version) if version.pk in visible_ids else None

    return {
        "ancestor": {"id": shown(path.ancestor.pk), "ref": ref(path.ancestor)},
        "descendant": {"id": shown(path.descendant.pk), "ref": ref(path.descendant)},
        "length": len(path.edges),
        "versions": [{"id": shown(version.pk), "ref": ref(version)} for version in path.versions],
        "edges": [
            {
                "parent": shown(edge.parent_id),
                "child": shown(edge.child_id),
                "relation": edge.relation,
                "parent_digest": edge.parent_digest if edge.parent_id in visible_ids else None,
            }
            for edge in path.edges
        ],
        "edges_on_any_path": [
            {
                "parent": shown(edge.parent_id),
                "child": shown(edge.child_id),
                "relation": edge.relation,
            }
            for edge in path.all_edges
        ],
        "hidden": _hidden_summary(sum(v.pk not in visible_ids for v in path.versions), 0),
    }


def plan_data(plan: RegistrationPlan) -> dict[str, Any]:
    """What a dry run found valid: the version and model, the artefact, parents and data."""
    model = plan.model
    name = model.name if model is not None else plan.new_model["name"]
    team = model.team if model is not None else plan.new_model["team"]
    fields, upload = plan.draft.fields, plan.draft.upload
    return {
        "valid": True,
        "dry_run": True,
        "version": f"{name}@{plan.draft.version}",
        "model": {"name": name, "team": team.slug, "created": model is None},
        "artefact": {
            "digest": fields["artefact_digest"],
            "size": fields.get("artefact_size"),
            "parameter_count": fields.get("parameter_count"),
            "upload": str(upload.pk) if upload is not None else None,
        },
        "parents": [
            {"version": str(parent), "relation": relation, "parent_digest": parent.artefact_digest}
            for parent, relation in plan.parents
        ],
        "training_run": None
        if plan.run is None
        else {
            "method": plan.run["method"],
            "datasets": [
                {"dataset_version": str(used), "role": role, "sha256": used.sha256}
                for used, role in plan.datasets
            ],
        },
    }
