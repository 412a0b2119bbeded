"""Admin for compliance staff. Writes go through the same services as the API."""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join

from pedigree_client.artefacts import weight_parameters
from registry import services
from registry.admin_base import ReadOnlyAdmin, ServiceFormAdmin
from registry.errors import ServiceError
from registry.gates import DISTRIBUTIONS, USES, gate_evaluate
from registry.models import (
    Approval,
    ApprovalDecision,
    ArtefactUpload,
    AuditEntry,
    CheckWaiver,
    Dataset,
    DatasetVersion,
    EventDelivery,
    GateDecision,
    ModelVersion,
    RegisteredModel,
    StagePolicy,
    Team,
    WebhookEndpoint,
)
from registry.plugins import VersionPanel, plugins
from registry.selectors import versions_visible_to


class ServiceAdmin(ServiceFormAdmin):
    """Creates through `create_object` and updates through `update_object`, each calling one
    service. Fields given at creation (`create_fields`) that the update service does not accept
    (`updatable_fields`) are read-only afterwards."""

    create_fields: tuple[str, ...] = ()
    updatable_fields: frozenset[str] = frozenset()

    def create_object(self, actor, data: dict):
        raise PermissionDenied("Create these through the API or the command-line client.")

    def update_object(self, actor, instance, changes: dict):
        raise PermissionDenied("These cannot be changed in the admin.")

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            frozen = [name for name in self.create_fields if name not in self.updatable_fields]
            readonly += [name for name in frozen if name not in readonly]
        return readonly

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            # The form already wrote its values onto `obj`: give the service the stored row, so
            # the audit's "before" is what was there.
            # Many-to-many fields are saved (and audited) by save_related.
            relations = {field.name for field in obj._meta.many_to_many}
            changes = {
                name: form.cleaned_data[name] for name in form.changed_data if name not in relations
            }
            if changes:
                stored = type(obj).objects.get(pk=obj.pk)
                self.update_object(request.user, stored, changes)
        else:
            data = {name: form.cleaned_data[name] for name in self.create_fields}
            obj.pk = self.create_object(request.user, data).pk


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
    fields = ["version", "stage", "risk_tier", "licence_declared", "registered_by", "registered_at"]
    readonly_fields = fields
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


class GateForm(forms.Form):
    stage = forms.ChoiceField(choices=[(s, s) for s in ("staging", "production", "archived")])
    use = forms.ChoiceField(choices=[(u, u) for u in USES])
    distribution = forms.ChoiceField(choices=[(d, d) for d in DISTRIBUTIONS])


class PromoteForm(GateForm):
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    replace_production = forms.BooleanField(required=False)


class ApprovalForm(forms.Form):
    stage = forms.ChoiceField(choices=[("production", "production"), ("staging", "staging")])
    decision = forms.ChoiceField(choices=ApprovalDecision.choices)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class WaiverForm(forms.Form):
    check_name = forms.CharField(label="Check", max_length=64)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    expires_at = forms.DateTimeField(help_text="YYYY-MM-DD HH:MM (UTC)")


def governance_view(model_admin, request, object_id):
    """One page per version: the gate's answer, decision history, approvals, waivers, and the
    actions compliance staff take on them — all through the same services as the API."""
    version = get_object_or_404(
        versions_visible_to(request.user).select_related("model__team"), pk=object_id
    )
    forms_by_action = {
        "promote": PromoteForm,
        "approve": ApprovalForm,
        "waive": WaiverForm,
    }
    if request.method == "POST":
        action = request.POST.get("action")
        form = forms_by_action.get(action, GateForm)(request.POST)
        if action not in forms_by_action or not form.is_valid():
            messages.error(request, f"Invalid {action or 'request'}: {form.errors.as_text()}")
        else:
            data = form.cleaned_data
            try:
                if action == "promote":
                    decision = services.version_promote(actor=request.user, version=version, **data)
                    if decision.passed:
                        messages.success(request, f"{version} promoted to {data['stage']}.")
                    else:
                        messages.error(
                            request,
                            f"Promotion of {version} to {data['stage']} "
                            "refused; see the failing checks below.",
                        )
                elif action == "approve":
                    services.approval_record(actor=request.user, version=version, **data)
                    messages.success(
                        request,
                        "Approval recorded."
                        if data["decision"] == "approve"
                        else "Rejection recorded.",
                    )
                else:
                    services.check_waiver_grant(actor=request.user, version=version, **data)
                    messages.success(request, f"Waiver of {data['check_name']} granted.")
            except ServiceError as error:
                messages.error(request, error.message)
        return redirect(request.get_full_path())
    query = GateForm(request.GET or None)
    last = version.decisions.first()
    params = (
        query.cleaned_data
        if query.is_valid()
        else {
            # Default to what was last asked for, else the next stage.
            "stage": last.to_stage
            if last
            else ("staging" if version.stage == "development" else "production"),
            "use": last.use if last else "commercial",
            "distribution": last.distribution if last else "hosted",
        }
    )
    evaluation = gate_evaluate(version=version, actor=request.user, **params)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Governance of {version}",
        "opts": model_admin.model._meta,
        "original": version,
        "version": version,
        "evaluation": evaluation,
        "params": params,
        "gate_form": GateForm(initial=params),
        "promote_form": PromoteForm(initial=params),
        "approval_form": ApprovalForm(initial={"stage": params["stage"]}),
        "waiver_form": WaiverForm(),
        "decisions": version.decisions.select_related("actor")[:20],
        "approvals": version.approvals.select_related("approver")[:20],
        "waivers": version.waivers.select_related("granted_by")[:20],
    }
    return TemplateResponse(request, "admin/registry/modelversion/governance.html", context)


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
        "<tr><td>{}</td><td>{}</td><td style='text-align:right'>{}</td><td><code>{}</code></td>"
        "<td style='text-align:right'>{}</td></tr>",
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
class ModelVersionAdmin(ServiceAdmin):
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
        "manifest_summary",
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
                    "manifest_summary",
                ]
            },
        ),
        ("Upstream source", {"fields": ["hub_repo_id", "hub_revision", "hub_card"]}),
        ("Provenance", {"fields": ["registered_by", "registered_at", "updated_at"]}),
    ]

    @admin.display(description="Files")
    def manifest_summary(self, obj: ModelVersion):
        return manifest_table(obj.artefact_manifest)

    def get_urls(self):
        view = self.admin_site.admin_view(partial(governance_view, self))
        return [
            path("<path:object_id>/governance/", view, name="registry_modelversion_governance"),
            *super().get_urls(),
        ]

    def has_add_permission(self, request):
        # Versions are registered through the API or `pedigree register`, which inspect weights.
        return False

    def update_object(self, actor, instance, changes):
        return services.version_update(actor=actor, version=instance, changes=changes)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The panels other apps register for the version page, in registration order.
        if obj is not None:
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
class DatasetVersionAdmin(ServiceAdmin):
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

    def update_object(self, actor, instance, changes):
        return services.dataset_version_update(
            actor=actor, dataset_version=instance, changes=changes
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The log is append-only and no surface edits or deletes it."""

    list_display = ["id", "at", "actor_name", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_name", "action", "hash"]
    list_select_related = ["actor"]


@admin.register(StagePolicy)
class StagePolicyAdmin(ServiceAdmin):
    """Compliance staff edit which checks and approvals each stage needs, per risk tier."""

    list_display = [
        "stage",
        "risk_tier",
        "allowed",
        "required_checks",
        "approvals_required",
        "revision",
        "updated_by",
        "updated_at",
    ]
    list_filter = ["stage", "risk_tier", "allowed"]
    list_select_related = ["updated_by"]
    fields = [
        "stage",
        "risk_tier",
        "allowed",
        "required_checks",
        "approvals_required",
        "revision",
        "updated_by",
        "updated_at",
    ]
    readonly_fields = ["stage", "risk_tier", "revision", "updated_by", "updated_at"]

    def has_add_permission(self, request):
        return False

    def update_object(self, actor, instance, changes):
        return services.stage_policy_update(actor=actor, policy=instance, changes=changes)


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdmin):
    list_display = ["decided_at", "version", "from_stage", "to_stage", "use", "passed", "actor"]
    list_filter = ["passed", "to_stage", "use"]
    search_fields = ["version__model__name", "version__version", "justification"]
    list_select_related = ["version", "version__model", "actor"]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "version", "stage", "decision", "approver", "expires_at"]
    list_filter = ["decision", "stage"]
    search_fields = ["version__model__name", "comment"]
    list_select_related = ["version", "version__model", "approver"]


@admin.register(CheckWaiver)
class CheckWaiverAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "version", "check_name", "granted_by", "expires_at", "revoked_at"]
    list_filter = ["check_name"]
    search_fields = ["version__model__name", "reason"]
    list_select_related = ["version", "version__model", "granted_by"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected waivers")
    def revoke(self, request, queryset):
        try:
            for waiver in queryset.select_related("version"):
                services.check_waiver_revoke(actor=request.user, waiver=waiver)
        except ServiceError as error:
            self.message_user(request, error.message, messages.ERROR)


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "secret", "events", "active"]

    def clean_events(self) -> list[str]:
        try:
            return services.webhook_events_validate(self.cleaned_data["events"])
        except ServiceError as error:
            raise forms.ValidationError(error.message) from error


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceAdmin):
    form = WebhookEndpointForm
    list_display = ["name", "url", "events", "active", "created_at"]

    create_fields = ("name", "url", "secret", "events", "active")
    updatable_fields = frozenset(services.WEBHOOK_ENDPOINT_UPDATABLE)

    def create_object(self, actor, data):
        return services.webhook_endpoint_create(actor=actor, **data)

    def update_object(self, actor, instance, changes):
        return services.webhook_endpoint_update(actor=actor, endpoint=instance, changes=changes)

    def has_delete_permission(self, request, obj=None):
        # Unlike other service-backed rows, endpoints may be deleted (through the service).
        return super(ServiceAdmin, self).has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        try:
            services.webhook_endpoint_delete(actor=request.user, endpoint=obj)
        except ServiceError as error:
            raise PermissionDenied(error.message) from error

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for endpoint in queryset:
                self.delete_model(request, endpoint)


@admin.register(EventDelivery)
class EventDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event", "endpoint", "status", "attempts", "delivered_at"]
    list_filter = ["status", "event"]
    list_select_related = ["endpoint"]


@admin.register(ArtefactUpload)
class ArtefactUploadAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_by", "created_at", "digest", "size", "consumed_by"]
    list_select_related = ["created_by", "consumed_by", "consumed_by__model"]
    search_fields = ["id", "digest", "created_by__username"]
    fields = [
        "id",
        "created_by",
        "created_at",
        "store_path",
        "digest",
        "size",
        "consumed_by",
        "files",
    ]
    readonly_fields = fields

    @admin.display(description="Files")
    def files(self, obj: ArtefactUpload):
        return manifest_table(obj.manifest)
