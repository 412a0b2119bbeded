"""Admin for compliance staff. Writes go through the same services as the API."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied

from registry import services
from registry.errors import ServiceError
from registry.models import AuditEntry, Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team

admin.site.site_header = "Pedigree — model registry and governance"
admin.site.site_title = "Pedigree"
admin.site.index_title = "Catalogue, lineage, licences and evaluations"


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    filter_horizontal = ["members"]
    readonly_fields = ["created_at"]

    def has_delete_permission(self, request, obj=None):
        return False


class VersionInline(admin.TabularInline):
    model = ModelVersion
    fields = ["version", "stage", "risk_tier", "licence_declared", "registered_by", "registered_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "team", "visibility", "task", "created_by", "created_at"]
    list_filter = ["kind", "visibility", "team"]
    search_fields = ["name", "description", "task"]
    list_select_related = ["team", "created_by"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [VersionInline]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            if change:
                changes = {
                    name: form.cleaned_data[name]
                    for name in form.changed_data
                    if name in services.MODEL_UPDATABLE
                }
                services.model_update(actor=request.user, model=obj, changes=changes)
            else:
                created = services.model_create(
                    actor=request.user,
                    **{
                        name: form.cleaned_data[name]
                        for name in (
                            "name",
                            "kind",
                            "team",
                            "visibility",
                            "task",
                            "description",
                            "allow_multiple_production",
                        )
                    },
                )
                obj.pk = created.pk
        except ServiceError as error:
            raise PermissionDenied(error.message) from error


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "stage",
        "risk_tier",
        "licence_declared",
        "licence_concluded",
        "parameter_count",
        "registered_by",
        "registered_at",
    ]
    list_filter = [
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
        "artefact_digest",
        "artefact_size",
        "parameter_count",
        "artefact_manifest",
        "hub_repo_id",
        "hub_revision",
        "hub_card",
        "stage",
        "registered_by",
        "registered_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["model", "version", "description", "stage"]}),
        ("Licence", {"fields": ["licence_declared", "licence_concluded"]}),
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
                    "artefact_manifest",
                ]
            },
        ),
        ("Upstream source", {"fields": ["hub_repo_id", "hub_revision", "hub_card"]}),
        ("Provenance", {"fields": ["registered_by", "registered_at", "updated_at"]}),
    ]

    def has_add_permission(self, request):
        # Versions are registered through the API or `pedigree register`, which inspect weights.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            services.version_update(
                actor=request.user, version=ModelVersion.objects.get(pk=obj.pk), changes=changes
            )
        except ServiceError as error:
            raise PermissionDenied(error.message) from error


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "visibility", "hub_id", "created_by", "created_at"]
    list_filter = ["visibility", "team"]
    search_fields = ["name", "description", "hub_id", "source"]
    list_select_related = ["team", "created_by"]
    readonly_fields = ["created_by", "created_at", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            if change:
                changes = {
                    name: form.cleaned_data[name]
                    for name in form.changed_data
                    if name in services.DATASET_UPDATABLE
                }
                services.dataset_update(actor=request.user, dataset=obj, changes=changes)
            else:
                created = services.dataset_create(
                    actor=request.user,
                    **{
                        name: form.cleaned_data[name]
                        for name in (
                            "name",
                            "team",
                            "visibility",
                            "description",
                            "source",
                            "hub_id",
                        )
                    },
                )
                obj.pk = created.pk
        except ServiceError as error:
            raise PermissionDenied(error.message) from error


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "licence_declared",
        "licence_concluded",
        "size_bytes",
        "row_count",
        "contains_personal_data",
        "registered_by",
        "registered_at",
    ]
    list_filter = ["contains_personal_data", "dataset__team"]
    search_fields = ["version", "dataset__name", "licence_declared", "sha256"]
    list_select_related = ["dataset", "dataset__team", "registered_by"]
    readonly_fields = [
        "dataset",
        "version",
        "sha256",
        "size_bytes",
        "registered_by",
        "registered_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            services.dataset_version_update(
                actor=request.user,
                dataset_version=DatasetVersion.objects.get(pk=obj.pk),
                changes=changes,
            )
        except ServiceError as error:
            raise PermissionDenied(error.message) from error


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the log is append-only and no surface edits or deletes it."""

    list_display = ["id", "at", "actor_name", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_name", "action", "hash"]
    list_select_related = ["actor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
