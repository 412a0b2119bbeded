"""The shapes of the lineage answers built as plain data (`graph_data`, `path_data`,
`hold_data`, `plan_data` and the registration's answer), as serializers so that the OpenAPI
schema types them, redacted placeholders included: what the caller cannot see has nulls where
its id, name, digest, licence or hold reason would be. They document; the contract test
(tests/api/test_schemathesis.py) holds the answers to them."""

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from lineage.api.serializers import EdgeSerializer, TrainingRunSerializer
from lineage.models import DatasetRole, HoldCategory, Method, Relation
from registry.api.serializers import VersionSerializer
from registry.models import Stage

# The `kind` of each node and edge, one choice each (a discriminator); named in the settings'
# ENUM_NAME_OVERRIDES, as `kind` of registered models is another choice set.
VERSION_NODE = ["version"]
DATASET_NODE = ["dataset"]
DERIVATION_EDGE = ["derivation"]
TRAINING_DATA_EDGE = ["training_data"]


class HiddenSummarySerializer(serializers.Serializer):
    """How many nodes are placeholders: counted, never named."""

    versions = serializers.IntegerField(min_value=0)
    datasets = serializers.IntegerField(min_value=0)
    summary = serializers.CharField(
        allow_blank=True, help_text="e.g. '3 versions you cannot see'; empty when none."
    )


class HoldViewSerializer(serializers.Serializer):
    """A hold; one on a version the caller cannot see says only that it holds and since when."""

    id = serializers.IntegerField(allow_null=True)
    on_version_id = serializers.IntegerField(allow_null=True)
    on = serializers.CharField(allow_null=True, help_text="MODEL@VERSION held")
    inherited = serializers.BooleanField(help_text="Placed on an ancestor.")
    category = serializers.ChoiceField(choices=HoldCategory.choices, allow_null=True)
    reason = serializers.CharField(allow_null=True)
    reference = serializers.CharField(allow_null=True, allow_blank=True)
    placed_by = serializers.CharField(allow_null=True)
    placed_at = serializers.DateTimeField()


class VersionHoldsSerializer(serializers.Serializer):
    version = serializers.CharField()
    held = serializers.BooleanField()
    holds = HoldViewSerializer(many=True)


class VersionNodeSerializer(serializers.Serializer):
    """A version in the graph; a placeholder (`hidden`) has only the first fields, with nulls
    for its id and name."""

    id = serializers.CharField(help_text="Node key: v<id>, or hidden-<n> for a placeholder.")
    kind = serializers.ChoiceField(choices=VERSION_NODE)
    generation = serializers.IntegerField(
        allow_null=True, help_text="Edges from the focus: negative for ancestors."
    )
    held = serializers.BooleanField()
    holds = serializers.ListField(child=serializers.IntegerField())
    focus = serializers.BooleanField()
    hidden = serializers.BooleanField()
    version_id = serializers.IntegerField(allow_null=True)
    ref = serializers.CharField(allow_null=True)
    model_kind = serializers.CharField(required=False)
    team = serializers.CharField(required=False)
    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    artefact_digest = serializers.CharField(required=False, allow_blank=True)
    licence_declared = serializers.CharField(required=False, allow_blank=True)
    unresolved = serializers.BooleanField(required=False)


class DatasetNodeSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Node key: d<id>, or hidden-<n> for a placeholder.")
    kind = serializers.ChoiceField(choices=DATASET_NODE)
    hidden = serializers.BooleanField()
    dataset_version_id = serializers.IntegerField(allow_null=True)
    ref = serializers.CharField(allow_null=True)
    sha256 = serializers.CharField(allow_null=True)
    licence_declared = serializers.CharField(allow_null=True, allow_blank=True)
    reference = serializers.BooleanField(
        help_text="A Hub dataset an upstream card names: no files, so no digest."
    )


class DerivationEdgeSerializer(serializers.Serializer):
    # Declared fields leave the class (DRF's metaclass): no clash with Field.source.
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="The parent's node key."
    )
    target = serializers.CharField(help_text="The child's node key.")
    kind = serializers.ChoiceField(choices=DERIVATION_EDGE)
    relation = serializers.ChoiceField(choices=Relation.choices)
    relation_inferred = serializers.BooleanField()
    relation_confirmed = serializers.BooleanField()
    parent_digest = serializers.CharField(allow_null=True, allow_blank=True)


class TrainingDataEdgeSerializer(serializers.Serializer):
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="The dataset's node key."
    )
    target = serializers.CharField(help_text="The trained version's node key.")
    kind = serializers.ChoiceField(choices=TRAINING_DATA_EDGE)
    role = serializers.ChoiceField(choices=DatasetRole.choices)
    sha256 = serializers.CharField(allow_null=True)
    declared_by_card = serializers.BooleanField(
        help_text="Named by the upstream model's card, not recorded by a training run."
    )


class LineageGraphSerializer(serializers.Serializer):
    focus = serializers.CharField(help_text="The node key of the version asked about.")
    truncated = serializers.BooleanField()
    nodes = PolymorphicProxySerializer(
        component_name="LineageNode",
        serializers={"version": VersionNodeSerializer, "dataset": DatasetNodeSerializer},
        resource_type_field_name="kind",
        many=True,
    )
    edges = PolymorphicProxySerializer(
        component_name="LineageGraphEdge",
        serializers={
            "derivation": DerivationEdgeSerializer,
            "training_data": TrainingDataEdgeSerializer,
        },
        resource_type_field_name="kind",
        many=True,
    )
    holds = HoldViewSerializer(many=True)
    hidden = HiddenSummarySerializer()


class PathVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    ref = serializers.CharField(allow_null=True)


class PathEdgeSerializer(serializers.Serializer):
    parent = serializers.IntegerField(allow_null=True)  # type: ignore[assignment]
    child = serializers.IntegerField(allow_null=True)
    relation = serializers.ChoiceField(choices=Relation.choices)


class PinnedPathEdgeSerializer(PathEdgeSerializer):
    parent_digest = serializers.CharField(allow_null=True, allow_blank=True)


class LineagePathSerializer(serializers.Serializer):
    ancestor = PathVersionSerializer()
    descendant = PathVersionSerializer()
    length = serializers.IntegerField(min_value=0)
    versions = PathVersionSerializer(many=True)
    edges = PinnedPathEdgeSerializer(many=True)
    edges_on_any_path = PathEdgeSerializer(many=True)
    hidden = HiddenSummarySerializer()


class RegisteredSerializer(serializers.Serializer):
    """201: what was registered."""

    version = VersionSerializer()
    parents = EdgeSerializer(many=True)
    training_run = TrainingRunSerializer(allow_null=True)


class PlannedModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    team = serializers.SlugField()
    created = serializers.BooleanField(help_text="The registration would create the model.")


class PlannedArtefactSerializer(serializers.Serializer):
    digest = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    parameter_count = serializers.IntegerField(allow_null=True)
    upload = serializers.UUIDField(allow_null=True)


class PlannedParentSerializer(serializers.Serializer):
    version = serializers.CharField()
    relation = serializers.ChoiceField(choices=Relation.choices)
    parent_digest = serializers.CharField(allow_blank=True)


class PlannedDatasetSerializer(serializers.Serializer):
    dataset_version = serializers.CharField()
    role = serializers.ChoiceField(choices=DatasetRole.choices)
    sha256 = serializers.CharField()


class PlannedRunSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=Method.choices)
    datasets = PlannedDatasetSerializer(many=True)


class RegistrationPlanSerializer(serializers.Serializer):
    """200 (dry run): everything checked, nothing written."""

    valid = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    version = serializers.CharField(help_text="MODEL@VERSION")
    model = PlannedModelSerializer()
    artefact = PlannedArtefactSerializer()
    parents = PlannedParentSerializer(many=True)
    training_run = PlannedRunSerializer(allow_null=True)


class TrainingDataRowSerializer(serializers.Serializer):
    """One dataset a version was made with; one the caller cannot see has nulls for its id,
    name, digest, location and licences."""

    dataset_version_id = serializers.IntegerField(allow_null=True)
    ref = serializers.CharField(allow_null=True)
    role = serializers.ChoiceField(choices=DatasetRole.choices)
    declared_by_card = serializers.BooleanField()
    reference = serializers.BooleanField()
    sha256 = serializers.CharField(allow_null=True)
    uri = serializers.CharField(allow_null=True, allow_blank=True)
    licence_declared = serializers.CharField(allow_null=True, allow_blank=True)
    licence_concluded = serializers.CharField(allow_null=True, allow_blank=True)


class TrainingDataSerializer(serializers.Serializer):
    version = serializers.CharField()
    datasets = TrainingDataRowSerializer(many=True)
