"""API shapes of suites and runs. Serializers parse and present; the rules live in services."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evaluators.engine.names import FAIRNESS_METRICS, KNOWN_METRICS, QUALITY_METRICS
from evaluators.models import Device, EvaluationResult, EvaluationRun, EvaluationSuite
from evaluators.selectors import dataset_version_by_ref, run_findings
from evaluators.services import SUITE_UPDATABLE
from registry.api.base import StrictFieldsMixin, StrictSerializer
from registry.api.serializers import VisibleSlugField
from registry.selectors import teams_visible_to


@extend_schema_field(OpenApiTypes.STR)
class DatasetVersionRefField(serializers.Field):
    """A dataset version named `DATASET@VERSION` (or by id), among those the caller can see."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int):
            raise serializers.ValidationError("Name the dataset version as DATASET@VERSION.")
        found = dataset_version_by_ref(self.context["request"].user, data)
        if found is None:
            raise serializers.ValidationError(
                f"No dataset version {data} that you can see; name it as DATASET@VERSION or by "
                "id (register it with POST /api/v1/dataset-versions/)."
            )
        return found

    def to_representation(self, value):
        return f"{value.dataset.name}@{value.version}"


class ModelNamesField(serializers.ListField):
    """The models a suite applies to, by name."""

    child = serializers.CharField(max_length=193)

    def to_representation(self, value):
        return sorted(model.name for model in value.all())


def _limits_field(metrics: tuple[str, ...], help_text: str) -> serializers.DictField:
    return serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=1),
        required=False,
        help_text=f"{help_text} Metrics: {', '.join(metrics)}.",
    )


SUITE_FIELDS = [
    "id",
    "name",
    "team",
    "visibility",
    "description",
    "dataset_version",
    "dataset_version_id",
    "dataset_sha256",
    "task",
    "input_column",
    "feature_columns",
    "label_column",
    "sensitive_columns",
    "positive_label",
    "metrics",
    "batch_size",
    "seed",
    "min_group_size",
    "min_quality",
    "max_fairness_gaps",
    "max_regression",
    "freshness_days",
    "models",
    "created_by",
    "created_at",
    "updated_at",
]


class EvaluationSuiteSerializer(StrictSerializer):
    team = VisibleSlugField(slug_field="slug", visible=teams_visible_to)
    dataset_version = DatasetVersionRefField()
    dataset_version_id = serializers.IntegerField(read_only=True)
    feature_columns = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        max_length=1024,
        help_text="Tabular classification: the numeric columns the model reads.",
    )
    sensitive_columns = serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, max_length=32
    )
    metrics = serializers.ListField(
        child=serializers.ChoiceField(choices=KNOWN_METRICS), required=False
    )
    min_quality = _limits_field(QUALITY_METRICS, "Minimum overall metrics.")
    max_fairness_gaps = _limits_field(
        FAIRNESS_METRICS,
        "Largest gap per sensitive attribute (demographic_parity_ratio: smallest ratio).",
    )
    max_regression = _limits_field(QUALITY_METRICS, "Largest allowed drop against the parent.")
    models = ModelNamesField(required=False, max_length=200)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = EvaluationSuite
        fields = SUITE_FIELDS
        read_only_fields = ["id", "dataset_sha256", "created_by", "created_at", "updated_at"]
        # Uniqueness is checked by the service (409 with a clear message).
        validators = []
        extra_kwargs = {"name": {"validators": []}}


class EvaluationSuiteUpdateSerializer(EvaluationSuiteSerializer):
    class Meta(EvaluationSuiteSerializer.Meta):
        read_only_fields = [name for name in SUITE_FIELDS if name not in SUITE_UPDATABLE]


class EvaluationResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvaluationResult
        fields = [
            "labels",
            "positive_label",
            "min_group_size",
            "overall",
            "groups",
            "fairness",
            "comparison",
            "created_at",
        ]


class EvaluationRunSerializer(serializers.ModelSerializer):
    version = serializers.SerializerMethodField()
    model = serializers.CharField(source="version.model.name", read_only=True)
    suite = serializers.CharField(source="suite.name", read_only=True)
    base_version = serializers.SerializerMethodField()
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()
    findings = serializers.SerializerMethodField()

    class Meta:
        model = EvaluationRun
        fields = [
            "id",
            "version",
            "version_id",
            "model",
            "suite",
            "suite_id",
            "status",
            "evaluator",
            "artefact_digest",
            "dataset_sha256",
            "base_version",
            "base_digest",
            "device_requested",
            "queue",
            "attempts",
            "progress",
            "requested_by",
            "requested_at",
            "started_at",
            "last_progress_at",
            "finished_at",
            "worker",
            "device",
            "torch_version",
            "cuda_version",
            "transformers_version",
            "peft_version",
            "samples",
            "duration_s",
            "inference_s",
            "samples_per_second",
            "error",
            "result",
            "findings",
        ]
        read_only_fields = fields

    def get_version(self, run: EvaluationRun) -> str:
        return str(run.version)

    def get_base_version(self, run: EvaluationRun) -> str | None:
        return str(run.base_version) if run.base_version else None

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_progress(self, run: EvaluationRun) -> dict:
        total = run.progress_total
        return {
            "done": run.progress_done,
            "total": total,
            "fraction": round(run.progress_done / total, 4) if total else None,
        }

    @extend_schema_field(EvaluationResultSerializer(allow_null=True))
    def get_result(self, run: EvaluationRun) -> dict | None:
        result = getattr(run, "result", None) if run.status == "succeeded" else None
        return EvaluationResultSerializer(result).data if result else None

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_findings(self, run: EvaluationRun) -> list[dict]:
        """Quality and fairness limits of the suite (as they are now) that the result breaks."""
        if run.status != "succeeded" or getattr(run, "result", None) is None:
            return []
        return [finding.to_dict() for finding in run_findings(run)]


class EvaluationRunRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    version = serializers.CharField(
        max_length=300, help_text="The version to evaluate: MODEL@VERSION or its id."
    )
    suite = serializers.CharField(max_length=193, help_text="The suite: its name or id.")
    device = serializers.ChoiceField(choices=Device.choices, default=Device.AUTO)


class RequestedRunSerializer(EvaluationRunSerializer):
    created = serializers.BooleanField(
        help_text="True when this request queued the run; false when a run of this version on "
        "this suite was already queued or running, and is shared."
    )

    class Meta(EvaluationRunSerializer.Meta):
        fields = [*EvaluationRunSerializer.Meta.fields, "created"]


class VersionEvaluationsSerializer(serializers.Serializer):
    """The answer (202) of `POST /api/v1/versions/{ref}/evaluations/`."""

    version = serializers.CharField(help_text="The version evaluated, MODEL@VERSION.")
    runs = RequestedRunSerializer(many=True, help_text="A run per suite, in the suites' order.")


class VersionEvaluationsRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    suites = serializers.ListField(
        child=serializers.CharField(max_length=193),
        required=False,
        min_length=1,
        max_length=50,
        help_text="The suites, by name or id; default: every suite attached to the model.",
    )
    device = serializers.ChoiceField(choices=Device.choices, default=Device.AUTO)
