"""Admin for compliance staff: suites (edited through the services) and read-only runs with
per-group tables and charts. The dashboard panel lists failing fairness and recent runs; the
version panel, a version's evidence per applicable suite and its latest runs."""

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from evaluators import services
from evaluators.charts import group_charts
from evaluators.engine.names import FAIRNESS_METRICS
from evaluators.models import EvaluationRun, EvaluationSuite, RunStatus
from evaluators.selectors import (
    evaluation_evidence,
    failing_fairness,
    latest_finished_runs,
    run_findings,
    runs_visible_to,
    suites_visible_to,
)
from registry.admin_base import ReadOnlyAdmin, ServiceFormAdmin
from registry.errors import ServiceError
from registry.models import ModelVersion

SUITE_MEASURES = [
    "dataset_version",
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
]


@admin.register(EvaluationSuite)
class EvaluationSuiteAdmin(ServiceFormAdmin):
    list_display = ["name", "team", "dataset_version", "task", "freshness_days", "updated_at"]
    list_filter = ["task", "team"]
    search_fields = ["name", "description"]
    list_select_related = ["team", "dataset_version__dataset"]
    filter_horizontal = ["models"]
    fieldsets = [
        (None, {"fields": ["name", "team", "visibility", "description", "models"]}),
        ("What is measured (fixed once created)", {"fields": [*SUITE_MEASURES]}),
        (
            "Limits",
            {
                "fields": [
                    "min_quality",
                    "max_fairness_gaps",
                    "max_regression",
                    "freshness_days",
                ]
            },
        ),
        ("Provenance", {"fields": ["dataset_sha256", "created_by", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return suites_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        fixed = ["dataset_sha256", "created_by", "created_at", "updated_at"]
        return [*fixed, "name", "team", *SUITE_MEASURES] if obj else fixed

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = dict(form.cleaned_data)
        if change:
            changes = {
                name: data[name] for name in form.changed_data if name in services.SUITE_UPDATABLE
            }
            if "models" in changes:
                changes["models"] = list(changes["models"])
            services.suite_update(actor=request.user, suite=obj, changes=changes)
        else:
            data["models"] = list(data.get("models") or [])
            for name in ("dataset_sha256", "created_by", "created_at", "updated_at"):
                data.pop(name, None)
            obj.pk = services.suite_create(actor=request.user, **data).pk

    def save_related(self, request, form, formsets, change):
        """The services set the models (and audit it); nothing else is related."""


@admin.action(description="Cancel the selected queued or running evaluations")
def cancel_runs(modeladmin, request, queryset):
    cancelled = 0
    for run in queryset.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]):
        try:
            services.run_cancel(actor=request.user, run=run)
            cancelled += 1
        except ServiceError as error:
            messages.error(request, error.message)
    messages.success(request, f"Cancelled {cancelled} evaluation(s).")


def _result_context(run: EvaluationRun) -> dict[str, Any]:
    """Tables and charts of a succeeded run's result, against its suite's current limits."""
    result = getattr(run, "result", None) if run.status == RunStatus.SUCCEEDED else None
    if result is None:
        return {"result": None}
    suite = run.suite
    attributes = []
    for name, groups in sorted(result.groups.items()):
        fairness = result.fairness.get(name, {})
        attributes.append(
            {
                "name": name,
                "rows": [
                    {
                        "group": group,
                        "n": row["n"],
                        "accuracy": row["accuracy"],
                        "macro_f1": row["macro_f1"],
                        "rates": [row["selection_rate"].get(label) for label in result.labels],
                    }
                    for group, row in sorted(groups.items())
                ],
                "fairness": [
                    {
                        "metric": metric,
                        "value": fairness[metric],
                        "limit": suite.max_fairness_gaps.get(metric),
                    }
                    for metric in FAIRNESS_METRICS
                    if metric in fairness
                ],
                "note": fairness.get("note", ""),
            }
        )
    return {
        "result": result,
        "findings": run_findings(run),
        "overall": [
            {"metric": metric, "value": value, "limit": suite.min_quality.get(metric)}
            for metric, value in result.overall.items()
            if metric != "n"
        ],
        "attributes": attributes,
        "charts": group_charts(result.metrics_dict()),
    }


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ReadOnlyAdmin):
    change_form_template = "evaluators/admin/run_change_form.html"
    list_display = [
        "id",
        "version",
        "suite",
        "status",
        "device",
        "samples_per_second",
        "requested_by",
        "finished_at",
    ]
    list_filter = ["status", "queue", "evaluator", "suite"]
    search_fields = ["version__model__name", "version__version", "suite__name"]
    list_select_related = ["version__model", "suite", "requested_by"]
    actions = [cancel_runs]
    fieldsets = [
        (None, {"fields": ["version", "suite", "status", "error", "requested_by"]}),
        (
            "Bound to",
            {
                "fields": [
                    "artefact_digest",
                    "dataset_sha256",
                    "evaluator",
                    "base_version",
                    "base_digest",
                ]
            },
        ),
        (
            "Execution",
            {
                "fields": [
                    "device_requested",
                    "queue",
                    "attempts",
                    "worker",
                    "progress_done",
                    "progress_total",
                    "requested_at",
                    "started_at",
                    "last_progress_at",
                    "finished_at",
                ]
            },
        ),
        (
            "Ran on",
            {
                "fields": [
                    "device",
                    "torch_version",
                    "cuda_version",
                    "transformers_version",
                    "peft_version",
                    "samples",
                    "duration_s",
                    "inference_s",
                    "samples_per_second",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return runs_visible_to(request.user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_queryset(request).filter(pk=object_id).first()
        context = _result_context(run) if run is not None else {}
        return super().change_view(
            request, object_id, form_url, {**context, **(extra_context or {})}
        )


def dashboard_panel_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "latest": latest_finished_runs(10),
        "failing": [{"run": run, "findings": findings} for run, findings in failing_fairness()],
    }


def version_panel_context(request: HttpRequest, version: ModelVersion) -> dict[str, Any]:
    evidence = [
        {"item": item, "findings": run_findings(item.run) if item.run else []}
        for item in evaluation_evidence(version)
    ]
    runs = (
        EvaluationRun.objects.filter(version=version)
        .select_related("suite")
        .order_by("-requested_at", "-id")[:10]
    )
    return {"version": version, "evidence": evidence, "runs": runs}
