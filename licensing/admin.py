"""Admin for compliance staff: licences (category and review flag), the Hub mapping, the
licence policy's rules and waivers. Every write goes through `licensing.services`."""

from collections.abc import Collection
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.forms.models import construct_instance
from django.http import HttpRequest
from django.urls import reverse

from licensing import services
from licensing.models import (
    RULE_FIELDS,
    HubLicenceMapping,
    Licence,
    LicencePolicy,
    LicencePolicyRevision,
    LicenceRule,
    LicenceTerm,
    LicenceWaiver,
)
from licensing.selectors import licence_check
from registry.admin_base import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceFormAdmin,
    expiry_widget,
    form_errors,
)
from registry.errors import PermissionRefused, ServiceError
from registry.gates import DISTRIBUTIONS, USES
from registry.models import ModelVersion, Stage


class LicenceTermInline(ReadOnlyInline):
    model = LicenceTerm
    fields = readonly_fields = (
        "type",
        "clause",
        "text",
        "value",
        "carries_through",
        "note",
        "attestation",
    )


class HubIdInline(ReadOnlyInline):
    model = HubLicenceMapping
    fields = readonly_fields = ("hub_id", "review_required", "reason")


@admin.register(Licence)
class LicenceAdmin(ServiceFormAdmin):
    list_display = [
        "spdx_id",
        "name",
        "category",
        "review_required",
        "curated",
        "deprecated",
        "compliance_override",
    ]
    list_filter = ["category", "review_required", "curated", "deprecated", "compliance_override"]
    search_fields = ["spdx_id", "name", "notes"]
    readonly_fields = [
        "spdx_id",
        "name",
        "url",
        "curated",
        "deprecated",
        "aliases",
        "catalogue_category",
        "catalogue_review_required",
        "compliance_override",
        "reviewed_by",
        "reviewed_at",
        "synced_at",
    ]
    fieldsets = [
        (None, {"fields": ["spdx_id", "name", "url", "curated", "deprecated", "aliases"]}),
        (
            "Compliance's reading",
            {
                "fields": ["category", "review_required", "notes"],
                "description": "Changes are audited and survive `manage.py licences_sync`.",
            },
        ),
        (
            "The catalogue's reading",
            {
                "fields": [
                    "catalogue_category",
                    "catalogue_review_required",
                    "compliance_override",
                    "reviewed_by",
                    "reviewed_at",
                    "synced_at",
                ]
            },
        ),
    ]
    inlines = [LicenceTermInline, HubIdInline]

    def has_add_permission(self, request):
        return False  # the catalogue adds licences (licences_sync)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in services.LICENCE_EDITABLE
        }
        services.licence_update(
            actor=request.user, licence=Licence.objects.get(pk=obj.pk), changes=changes
        )


@admin.register(HubLicenceMapping)
class HubLicenceMappingAdmin(ReadOnlyAdmin):
    list_display = ["hub_id", "licence", "review_required", "reason"]
    list_filter = ["review_required"]
    search_fields = ["hub_id", "licence__spdx_id"]
    list_select_related = ["licence"]


class RevisionInline(ReadOnlyInline):
    model = LicencePolicyRevision
    fields = readonly_fields = ("revision", "change", "changed_by", "changed_at")
    ordering = ["-revision"]


class RuleInline(ReadOnlyInline):
    model = LicenceRule
    fields = readonly_fields = (
        "position",
        "name",
        "enabled",
        "condition",
        "severity",
        "stages",
        "uses",
    )
    show_change_link = True


@admin.register(LicencePolicy)
class LicencePolicyAdmin(ReadOnlyAdmin):
    list_display = ["name", "active", "revision", "updated_by", "updated_at"]
    readonly_fields = ["name", "description", "active", "revision", "updated_by", "updated_at"]
    inlines = [RuleInline, RevisionInline]


def _choices(values) -> list[tuple[str, str]]:
    return [(value, value.replace("_", " ")) for value in values]


class LicenceRuleForm(forms.ModelForm):
    stages = forms.MultipleChoiceField(
        choices=_choices(s for s in Stage.values if s != Stage.ARCHIVED),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any stage.",
    )
    uses = forms.MultipleChoiceField(
        choices=_choices(USES),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any use.",
    )
    distributions = forms.MultipleChoiceField(
        choices=_choices(DISTRIBUTIONS),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any distribution.",
    )

    class Meta:
        model = LicenceRule
        fields = ["policy", *RULE_FIELDS]

    def clean(self):
        # ModelForm.clean returns `cleaned_data` itself; only overrides may return None.
        super().clean()
        cleaned = self.cleaned_data
        policy = cleaned.get("policy") or getattr(self.instance, "policy", None)
        if self.errors or policy is None:
            return cleaned
        values = {name: cleaned.get(name) for name in RULE_FIELDS if name in cleaned}
        try:
            existing = LicenceRule.objects.get(pk=self.instance.pk) if self.instance.pk else None
            services.licence_rule_validate(policy=policy, values=values, rule=existing)
        except ServiceError as error:
            form_errors(self, error)
        return cleaned

    def _post_clean(self):
        # The service validated the rule; the model's own checks would repeat them without
        # the field names and fixes. The admin still needs the instance filled in.
        construct_instance(self, self.instance, self._meta.fields)


@admin.register(LicenceRule)
class LicenceRuleAdmin(ServiceFormAdmin):
    form = LicenceRuleForm
    list_display = [
        "name",
        "policy",
        "position",
        "enabled",
        "condition",
        "severity",
        "stages",
        "uses",
        "distributions",
    ]
    list_filter = ["policy", "enabled", "condition", "severity"]
    list_editable = []
    search_fields = ["name", "message"]
    list_select_related = ["policy", "licence"]
    autocomplete_fields = ["licence"]
    ordering = ["policy", "position", "id"]

    def get_readonly_fields(self, request, obj=None):
        return ["policy"] if obj else []

    def save_model(self, request, obj, form, change):
        values = {
            name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data
        }
        if change:
            changed = {name: values[name] for name in form.changed_data if name in values}
            services.licence_rule_update(
                actor=request.user, rule=LicenceRule.objects.get(pk=obj.pk), changes=changed
            )
        else:
            created = services.licence_rule_create(
                actor=request.user, policy=form.cleaned_data["policy"], **values
            )
            obj.pk = created.pk

    def delete_model(self, request, obj):
        # Deleting asks nothing but the permission: there is no input to be wrong.
        try:
            services.licence_rule_delete(actor=request.user, rule=obj)
        except PermissionRefused as error:
            raise PermissionDenied(error.message) from error

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            self.delete_model(request, rule)


class LicenceWaiverForm(forms.ModelForm):
    # The same date widget as the governance page's check waivers (not the admin's split one).
    expires_at = forms.DateTimeField(help_text="YYYY-MM-DD HH:MM (UTC)", widget=expiry_widget())

    class Meta:
        model = LicenceWaiver
        fields = ["version", "rule_name", "licence_id", "reason", "approver", "expires_at"]

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if self.errors:
            return cleaned
        try:
            services.licence_waiver_validate(
                version=cleaned["version"],
                rule_name=cleaned["rule_name"],
                reason=cleaned.get("reason", ""),
                approver=cleaned.get("approver"),
                expires_at=cleaned.get("expires_at"),
                licence_id=cleaned.get("licence_id", ""),
            )
        except ServiceError as error:
            form_errors(self, error)
        return cleaned

    def _post_clean(self):
        construct_instance(self, self.instance, self._meta.fields)


@admin.register(LicenceWaiver)
class LicenceWaiverAdmin(ServiceFormAdmin):
    form = LicenceWaiverForm
    list_display = [
        "version",
        "rule_name",
        "licence_id",
        "approver",
        "granted_by",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["rule_name", "revoked_at"]
    search_fields = ["version__model__name", "rule_name", "licence_id", "reason"]
    list_select_related = ["version__model", "approver", "granted_by"]
    raw_id_fields = ["version"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "version",
            "artefact_digest",
            "rule_name",
            "licence_id",
            "reason",
            "approver",
            "granted_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "revoked_by",
        ]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        waiver = services.licence_waiver_grant(
            actor=request.user,
            version=data["version"],
            rule_name=data["rule_name"],
            licence_id=data.get("licence_id", ""),
            reason=data["reason"],
            approver=data["approver"],
            expires_at=data["expires_at"],
        )
        obj.pk = waiver.pk

    @admin.action(description="Revoke the selected waivers")
    def revoke(self, request, queryset):
        try:
            for waiver in queryset:
                services.licence_waiver_revoke(actor=request.user, waiver=waiver)
        except ServiceError as error:
            messages.error(request, error.message)
            return
        messages.success(request, "Waivers revoked; they no longer waive anything.")


_PANEL_STAGES = [stage for stage in Stage.values if stage != Stage.ARCHIVED]


def _param(request: HttpRequest | None, name: str, allowed: Collection[str], default: str) -> str:
    value = request.GET.get(name, default) if request is not None else default
    return value if value in allowed else default


def version_panel_context(request: HttpRequest | None, version: ModelVersion) -> dict[str, Any]:
    """Obligations and the licence check for a version's admin page. The context (stage, use,
    distribution) comes from the page's query string when it names one (the governance page
    does), else production, commercial, hosted: the strictest common case."""
    check = licence_check(
        version=version,
        stage=_param(request, "stage", _PANEL_STAGES, "production"),
        use=_param(request, "use", USES, "commercial"),
        distribution=_param(request, "distribution", DISTRIBUTIONS, "hosted"),
    )
    return {
        "version": version,
        "check": check,
        "violations": [violation.to_dict() for violation in check.violations],
        "obligations": [obligation.to_dict() for obligation in check.obligations],
        "choices": [choice.to_dict() for choice in check.choices],
        "check_url": reverse("version-licence-check", args=[version.pk]),
        "obligations_url": reverse("version-obligations", args=[version.pk]),
        "waiver_url": reverse("admin:licensing_licencewaiver_add") + f"?version={version.pk}",
    }
