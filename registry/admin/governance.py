"""Admin of governance: the governance page of a version (gate, approve, waive, promote),
stage policies, and the read-only records of decisions, approvals, waivers and the audit log."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse

from registry import services
from registry.admin_base import ReadOnlyAdmin, ServiceAdmin
from registry.errors import ServiceError
from registry.gates import DISTRIBUTIONS, USES, gate_evaluate
from registry.models import (
    Approval,
    ApprovalDecision,
    AuditEntry,
    CheckWaiver,
    GateDecision,
    StagePolicy,
)
from registry.selectors import versions_visible_to


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
        "hold_when_out_of_compliance",
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
