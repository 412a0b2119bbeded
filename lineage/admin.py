"""Admin for lineage. Edges and runs are read-only history; holds go through the services."""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from lineage import services
from lineage.checks import hold_reason
from lineage.models import Hold, LineageEdge, TrainingDataset, TrainingRun
from lineage.picture import EDGE_LABEL_HEIGHT, EDGE_LABEL_WIDTH, NODE_WIDTH, version_picture
from lineage.selectors import active_holds_on, held_count
from registry.admin_base import ReadOnlyAdmin, ReadOnlyInline, ServiceFormAdmin
from registry.models import ModelVersion


@admin.register(LineageEdge)
class LineageEdgeAdmin(ReadOnlyAdmin):
    list_display = ["child", "relation", "parent", "parent_digest", "created_by", "created_at"]
    list_filter = ["relation"]
    search_fields = ["child__model__name", "parent__model__name", "parent_digest"]
    list_select_related = ["child__model", "parent__model", "created_by"]

    def get_urls(self):
        view = self.admin_site.admin_view(self.graph_svg)
        return [
            path("graph/<int:version_id>.svg", view, name="lineage_lineageedge_graph"),
            *super().get_urls(),
        ]

    def graph_svg(self, request, version_id: int):
        """The lineage picture of one version as a standalone SVG document."""
        if not request.user.has_perm("registry.view_modelversion"):
            raise PermissionDenied
        version = get_object_or_404(ModelVersion.objects.select_related("model"), pk=version_id)
        return TemplateResponse(
            request,
            "lineage/graph.svg",
            {
                "picture": version_picture(request.user, version),
                "focus": version,
                "node_width": NODE_WIDTH,
                "edge_label_width": EDGE_LABEL_WIDTH,
                "edge_label_height": EDGE_LABEL_HEIGHT,
            },
            content_type="image/svg+xml",
        )


class TrainingDatasetInline(ReadOnlyInline):
    model = TrainingDataset
    fields = ("dataset_version", "role", "sha256")
    readonly_fields = fields


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["version", "method", "run_by", "gpu_hours", "energy_kwh", "finished_at"]
    list_filter = ["method"]
    search_fields = ["version__model__name", "code_revision"]
    list_select_related = ["version__model", "run_by"]
    inlines = [TrainingDatasetInline]


class HoldForm(forms.ModelForm):
    lift_reason_given = forms.CharField(
        label="Lift the hold because",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Compliance staff only. Lifting also releases every descendant held "
        "through this hold.",
    )

    class Meta:
        model = Hold
        fields = ["version", "category", "reason", "reference"]


@admin.register(Hold)
class HoldAdmin(ServiceFormAdmin):
    form = HoldForm
    list_display = [
        "id",
        "version",
        "category",
        "is_active",
        "placed_by",
        "placed_at",
        "lifted_by",
        "lifted_at",
    ]
    list_filter = ["category", ("lifted_at", admin.EmptyFieldListFilter)]
    search_fields = ["reason", "version__model__name", "reference"]
    list_select_related = ["version__model", "placed_by", "lifted_by"]
    autocomplete_fields = ["version"]

    @admin.display(boolean=True, description="active")
    def is_active(self, hold: Hold) -> bool:
        return hold.active

    @admin.display(description="versions held (itself and descendants)")
    def held_versions(self, hold: Hold) -> int:
        return held_count(hold)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["version", "category", "reason", "reference"]})]
        placed = [
            "version",
            "category",
            "reason",
            "reference",
            "placed_by",
            "placed_at",
            "held_versions",
        ]
        lifted = ["lifted_by", "lifted_at", "lift_reason"]
        return [
            ("Hold", {"fields": placed}),
            ("Lift", {"fields": lifted if not obj.active else ["lift_reason_given"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "version",
            "category",
            "reason",
            "reference",
            "placed_by",
            "placed_at",
            "held_versions",
            "lifted_by",
            "lifted_at",
            "lift_reason",
        ]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            hold = services.hold_place(
                actor=request.user,
                version=form.cleaned_data["version"],
                category=form.cleaned_data["category"],
                reason=form.cleaned_data["reason"],
                reference=form.cleaned_data["reference"],
            )
            obj.pk = hold.pk
        elif form.cleaned_data.get("lift_reason_given"):
            services.hold_lift(
                actor=request.user, hold=obj, reason=form.cleaned_data["lift_reason_given"]
            )


def version_panel_context(request: HttpRequest, version: ModelVersion) -> dict[str, Any]:
    """The lineage picture and why the version is held, for its admin page."""
    return {
        "version": version,
        "focus": version,
        "picture": version_picture(request.user, version),
        "node_width": NODE_WIDTH,
        "edge_label_width": EDGE_LABEL_WIDTH,
        "edge_label_height": EDGE_LABEL_HEIGHT,
        "holds": [
            {"hold": hold, "line": hold_reason(hold, version.pk)}
            for hold in active_holds_on(version.pk)
        ],
        "svg_url": reverse("admin:lineage_lineageedge_graph", args=[version.pk]),
        "api_url": reverse("version-lineage", args=[version.pk]),
    }
