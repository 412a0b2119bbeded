"""Admin of the catalogue: teams, models, versions (with the plug-in panels), datasets and
uploads."""

from functools import partial

from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import path
from django.utils.html import format_html, format_html_join

from pedigree_client.artefacts import weight_parameters
from registry import services
from registry.admin.console import compare_view, evidence_view, timeline_view
from registry.admin.governance import governance_view
from registry.admin.proposals import ProposingAdminMixin
from registry.admin_base import ReadOnlyAdmin, ServiceAdmin
from registry.console import hold_url, production_counterpart, version_verdicts
from registry.models import (
    ArtefactUpload,
    Dataset,
    DatasetVersion,
    ModelVersion,
    RegisteredModel,
    Team,
)
from registry.plugins import VersionPanel, VersionSummary, plugins
from registry.selectors import compliance_of, pending_proposals


@admin.register(Team)
class TeamAdmin(ServiceAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    filter_horizontal = ["members"]
    readonly_fields = ["created_at"]

    create_fields = ("slug", "name", "description")
    updatable_fields = frozenset({"name", "description"})

    def create_object(self, actor, data):
        return services.team_create(actor=actor, **data)

    def update_object(self, actor, instance, changes):
        return services.team_update(actor=actor, team=instance, changes=changes)

    def save_related(self, request, form, formsets, change):
        before = sorted(form.instance.members.values_list("username", flat=True))
        super().save_related(request, form, formsets, change)
        after = sorted(form.instance.members.values_list("username", flat=True))
        if before != after:
            services.team_members_set_audit(
                actor=request.user, team=form.instance, before=before, after=after
            )


class VersionInline(admin.TabularInline):
    model = ModelVersion
    fields = readonly_fields = (
        "version",
        "stage",
        "risk_tier",
        "licence_declared",
        "registered_by",
        "registered_at",
    )
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ServiceAdmin):
    list_display = ["name", "kind", "team", "visibility", "task", "created_by", "created_at"]
    list_filter = ["kind", "visibility", "team"]
    search_fields = ["name", "description", "task"]
    list_select_related = ["team", "created_by"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [VersionInline]

    create_fields = (
        "name",
        "kind",
        "team",
        "visibility",
        "task",
        "description",
        "allow_multiple_production",
    )
    updatable_fields = frozenset(services.MODEL_UPDATABLE)

    def create_object(self, actor, data):
        return services.model_create(actor=actor, **data)

    def update_object(self, actor, instance, changes):
        return services.model_update(actor=actor, model=instance, changes=changes)


def manifest_table(manifest: dict):
    """An artefact manifest as a small table: each file with its kind, size, SHA-256 and
    tensor count, under the totals."""
    if not manifest:
        return "No files inspected (registered by digest only)."
    by_dtype = ", ".join(
        f"{dtype} {count:,}" for dtype, count in sorted(manifest["parameters_by_dtype"].items())
    )
    adapter = manifest.get("adapter") or {}
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td class='numeric'>{}</td><td><code>{}</code></td>"
        "<td class='numeric'>{}</td></tr>",
        (
            (
                file["path"],
                file["kind"],
                f"{file['size']:,}",
                file["sha256"],
                f"{file['safetensors']['total_parameters']:,}" if file["safetensors"] else "",
            )
            for file in manifest["files"]
        ),
    )
    return format_html(
        "<p>{} artefact, digest <code>{}</code>, {} bytes; {} parameters ({}){}</p>"
        "<table><thead><tr><th>File</th><th>Kind</th><th>Bytes</th><th>SHA-256</th>"
        "<th>Elements</th></tr></thead><tbody>{}</tbody></table>",
        manifest["format"],
        manifest["digest"],
        f"{manifest['total_size']:,}",
        f"{weight_parameters(manifest['parameters_by_dtype']):,}",
        by_dtype or "no tensors",
        format_html("; adapter on base {}", adapter["base_model_name_or_path"])
        if adapter.get("base_model_name_or_path")
        else "",
        rows,
    )


@admin.register(ModelVersion)
class ModelVersionAdmin(ProposingAdminMixin, ServiceAdmin):
    list_display = [
        "__str__",
        "stage",
        "risk_tier",
        "licence_declared",
        "licence_concluded",
        "parameter_count",
        "unresolved",
        "registered_by",
        "registered_at",
    ]
    list_filter = [
        "unresolved",
        "stage",
        "risk_tier",
        "model__kind",
        "model__team",
        "uses_sensitive_personal_data",
    ]
    search_fields = ["version", "model__name", "licence_declared", "hub_repo_id"]
    list_select_related = ["model", "model__team", "registered_by"]
    readonly_fields = [
        "model",
        "version",
        "licence_review_required",
        "artefact_uri",
        "artefact_digest",
        "artefact_size",
        "parameter_count",
        "manifest_summary",
        "hub_repo_id",
        "hub_revision",
        "unresolved",
        "hub_card",
        "stage",
        "registered_by",
        "registered_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["model", "version", "description", "stage"]}),
        (
            "Licence",
            {"fields": ["licence_declared", "licence_review_required", "licence_concluded"]},
        ),
        (
            "Risk",
            {
                "fields": [
                    "risk_tier",
                    "intended_use",
                    "out_of_scope_uses",
                    "known_limitations",
                    "uses_sensitive_personal_data",
                    "domain",
                ]
            },
        ),
        (
            "Artefact",
            {
                "fields": [
                    "artefact_uri",
                    "artefact_digest",
                    "artefact_size",
                    "parameter_count",
                    "manifest_summary",
                ]
            },
        ),
        (
            "Upstream source",
            {
                "fields": ["hub_repo_id", "hub_revision", "unresolved", "hub_card"],
                "description": "An unresolved upstream reference is a base a model card names "
                "that nobody imported: no artefact, no licence evidence. Importing the Hub "
                "repository fills it in place.",
            },
        ),
        ("Provenance", {"fields": ["registered_by", "registered_at", "updated_at"]}),
    ]

    @admin.display(description="Files")
    def manifest_summary(self, obj: ModelVersion):
        return manifest_table(obj.artefact_manifest)

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(partial(function, self))

        return [
            path(
                "<path:object_id>/governance/",
                view(governance_view),
                name="registry_modelversion_governance",
            ),
            path(
                "<path:object_id>/compare/",
                view(compare_view),
                name="registry_modelversion_compare",
            ),
            path(
                "<path:object_id>/evidence/",
                view(evidence_view),
                name="registry_modelversion_evidence",
            ),
            *super().get_urls(),
        ]

    def history_view(self, request, object_id, extra_context=None):
        # The version's real history is its audit entries and what the apps recorded, not
        # Django's admin LogEntry (the services write the former).
        return timeline_view(self, request, object_id)

    def has_add_permission(self, request):
        # Versions are registered through the API or `pedigree register`, which inspect weights.
        return False

    def update_object(self, actor, instance, changes):
        return services.version_edit(actor=actor, version=instance, changes=changes)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The panels other apps register for the version page, in registration order.
        if obj is not None:
            context["verdicts"] = version_verdicts(version=obj, actor=request.user)
            # The standing the recheck stored (what the dashboard lists and webhooks announced).
            context["compliance"] = compliance_of(obj)
            # Evidence changes engineers proposed, awaiting a compliance conclusion.
            context["proposals"] = pending_proposals(request.user).filter(version=obj)
            context["production"] = production_counterpart(request.user, obj)
            context["hold_url"] = hold_url(obj)
            context["summaries"] = [
                render_to_string(panel.template, panel.context(request, obj), request=request)
                for panel in plugins.contributions(VersionSummary)
            ]
            context["version_panels"] = [
                render_to_string(panel.template, panel.context(request, obj), request=request)
                for panel in plugins.contributions(VersionPanel)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(Dataset)
class DatasetAdmin(ServiceAdmin):
    list_display = ["name", "team", "visibility", "hub_id", "created_by", "created_at"]
    list_filter = ["visibility", "team"]
    search_fields = ["name", "description", "hub_id", "source"]
    list_select_related = ["team", "created_by"]
    readonly_fields = ["created_by", "created_at", "updated_at"]

    create_fields = ("name", "team", "visibility", "description", "source", "hub_id")
    updatable_fields = frozenset(services.DATASET_UPDATABLE)

    def create_object(self, actor, data):
        return services.dataset_create(actor=actor, **data)

    def update_object(self, actor, instance, changes):
        return services.dataset_update(actor=actor, dataset=instance, changes=changes)


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ProposingAdminMixin, ServiceAdmin):
    list_display = [
        "__str__",
        "licence_declared",
        "licence_concluded",
        "size_bytes",
        "row_count",
        "reference",
        "contains_personal_data",
        "registered_by",
        "registered_at",
    ]
    # A reference: a Hub dataset an upstream model card names, recorded without files.
    list_filter = ["reference", "contains_personal_data", "dataset__team"]
    search_fields = ["version", "dataset__name", "licence_declared", "sha256"]
    list_select_related = ["dataset", "dataset__team", "registered_by"]
    readonly_fields = [
        "dataset",
        "version",
        "sha256",
        "size_bytes",
        "reference",
        "registered_by",
        "registered_at",
    ]

    def has_add_permission(self, request):
        return False

    def update_object(self, actor, instance, changes):
        return services.dataset_version_edit(actor=actor, dataset_version=instance, changes=changes)


@admin.register(ArtefactUpload)
class ArtefactUploadAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_by", "created_at", "digest", "size", "consumed_by"]
    list_select_related = ["created_by", "consumed_by", "consumed_by__model"]
    search_fields = ["id", "digest", "created_by__username"]
    fields = readonly_fields = (
        "id",
        "created_by",
        "created_at",
        "store_path",
        "digest",
        "size",
        "consumed_by",
        "files",
    )

    @admin.display(description="Files")
    def files(self, obj: ArtefactUpload):
        return manifest_table(obj.manifest)
