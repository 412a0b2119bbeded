"""Admin of governance: the governance page of a version (gate, approve, waive, promote),
stage policies, and the read-only records of decisions, approvals, waivers and the audit log."""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString

from registry import services
from registry.admin_base import WAIVER_DEFAULT_DAYS, ReadOnlyAdmin, ServiceAdmin, expiry_widget
from registry.console import admin_url, next_stage, stage_verdict
from registry.errors import ServiceError
from registry.gates import DISTRIBUTIONS, USES, failing_checks
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
    attestations = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="One per line, as the licence check names them (production approvals only).",
    )

    def clean_attestations(self) -> list[str]:
        return [line for line in self.cleaned_data["attestations"].splitlines() if line.strip()]


class WaiverForm(forms.Form):
    check_name = forms.CharField(label="Check", max_length=64)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    expires_at = forms.DateTimeField(help_text="YYYY-MM-DD HH:MM (UTC)", widget=expiry_widget())


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
        back = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            return redirect(back)
        return redirect(request.get_full_path())
    query = GateForm(request.GET or None)
    last = version.decisions.first()
    params = (
        query.cleaned_data
        if query.is_valid()
        else {
            # Default to the next stage, else (released or archived) the stage it is in.
            "stage": next_stage(version, last) or version.stage,
            "use": last.use if last else "commercial",
            "distribution": last.distribution if last else "hosted",
        }
    )
    evaluation = stage_verdict(version=version, actor=request.user, **params)
    waive = request.GET.get("waive", "")
    violation = next((row for row in evaluation.failures if row["check"] == waive), None)
    waiver_initial = (
        {
            "check_name": waive,
            "reason": f"Accepted risk: {'; '.join(violation['reasons'])}. Because ",
            "expires_at": timezone.now() + timedelta(days=WAIVER_DEFAULT_DAYS),
        }
        if violation
        else {}
    )
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
        "waiver_form": WaiverForm(initial=waiver_initial),
        "decisions": version.decisions.select_related("actor")[:20],
        "approvals": version.approvals.select_related("approver")[:20],
        "waivers": version.waivers.select_related("granted_by")[:20],
    }
    return TemplateResponse(request, "admin/registry/modelversion/governance.html", context)


# The objects gate evidence names by id, by the key that holds them: linked to their pages.
EVIDENCE_OBJECTS = {
    "holds": "lineage.hold",
    "approvals": "registry.approval",
    "run": "evaluators.evaluationrun",
    "suite_id": "evaluators.evaluationsuite",
}


def evidence_html(value: Any, key: str = "") -> str:
    """Gate evidence as nested lists, ids of the objects it names linked to their pages."""
    if isinstance(value, dict):
        items = format_html_join(
            "",
            "<li><strong>{}</strong>: {}</li>",
            ((k, evidence_html(v, k)) for k, v in value.items()),
        )
        return format_html("<ul class='evidence'>{}</ul>", items) if value else "—"
    if isinstance(value, list):
        if not value:
            return "none"
        if key in EVIDENCE_OBJECTS:
            value = [
                {**item, "id": _linked(EVIDENCE_OBJECTS[key], item["id"])}
                if isinstance(item, dict) and "id" in item
                else item
                for item in value
            ]
        return format_html_join(
            "", "<div>{}</div>", ((evidence_html(item, key),) for item in value)
        )
    if key in EVIDENCE_OBJECTS and isinstance(value, int):
        return _linked(EVIDENCE_OBJECTS[key], value)
    if isinstance(value, str) and value.startswith("/"):
        return format_html("<a href='{}'>{}</a>", value, value)
    return conditional_escape(value) if not isinstance(value, SafeString) else value


def _linked(object_type: str, object_id: Any) -> SafeString:
    url = admin_url(object_type, object_id)
    return (
        format_html("<a href='{}'>#{}</a>", url, object_id)
        if url
        else format_html("#{}", object_id)
    )


def checks_table(results: list[dict[str, Any]]) -> SafeString:
    """A gate's check rows as a table: result, reasons and evidence with links."""
    rows = format_html_join(
        "",
        "<tr class='{}'><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                "failing" if row in failing_checks(results) else "",
                row["check"],
                "required" if row["required"] else "informational",
                "pass"
                if row["passed"]
                else (
                    format_html(
                        "waived (<a href='{}'>waiver #{}</a>)",
                        admin_url("registry.checkwaiver", row["waiver"]["id"]),
                        row["waiver"]["id"],
                    )
                    if row.get("waiver")
                    else "FAIL"
                ),
                format_html_join("", "<div>{}</div>", ((reason,) for reason in row["reasons"]))
                or "—",
                evidence_html(row.get("evidence") or {}),
            )
            for row in results
        ),
    )
    return format_html(
        "<table class='gate-checks'><thead><tr><th>Check</th><th>Required</th><th>Result</th>"
        "<th>Reasons</th><th>Evidence</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


def changes_table(before: Any, after: Any) -> SafeString:
    """An audit entry's before and after, key by key, changed keys marked."""
    before = before if isinstance(before, dict) else ({} if before is None else {"value": before})
    after = after if isinstance(after, dict) else ({} if after is None else {"value": after})
    keys = [*before, *(key for key in after if key not in before)]
    rows = format_html_join(
        "",
        "<tr class='{}'><th>{}</th><td>{}</td><td>{}</td></tr>",
        (
            (
                "differs" if before.get(key) != after.get(key) else "",
                key,
                evidence_html(before.get(key, "")),
                evidence_html(after.get(key, "")),
            )
            for key in keys
        ),
    )
    return format_html(
        "<table class='changes'><thead><tr><th>Field</th><th>Before</th><th>After</th></tr>"
        "</thead><tbody>{}</tbody></table>",
        rows,
    )


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The log is append-only and no surface edits or deletes it."""

    list_display = ["id", "at", "actor_name", "action", "object_link"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_name", "action", "hash"]
    list_select_related = ["actor"]
    date_hierarchy = "at"
    fields = readonly_fields = (
        "at",
        "actor_name",
        "action",
        "object_link",
        "changes",
        "seq",
        "prev_hash",
        "hash",
    )

    def lookup_allowed(self, lookup, value, request=None):
        # The version page's History links to the entries of one object.
        return lookup in ("object_id", "object_type") or super().lookup_allowed(
            lookup, value, request
        )

    @admin.display(description="object", ordering="object_repr")
    def object_link(self, entry: AuditEntry):
        url = admin_url(entry.object_type, entry.object_id)
        label = entry.object_repr or f"{entry.object_type} {entry.object_id}"
        return format_html("<a href='{}'>{}</a>", url, label) if url else label

    @admin.display(description="changes")
    def changes(self, entry: AuditEntry):
        return changes_table(entry.before, entry.after)


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
    date_hierarchy = "decided_at"
    fields = readonly_fields = (
        "version",
        "from_stage",
        "to_stage",
        "use",
        "distribution",
        "passed",
        "actor",
        "decided_at",
        "justification",
        "artefact_digest",
        "checks",
        "policy_summary",
    )

    @admin.display(description="checks")
    def checks(self, decision: GateDecision):
        return checks_table(decision.results)

    @admin.display(description="stage policy")
    def policy_summary(self, decision: GateDecision):
        return evidence_html(decision.policy)


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "version", "stage", "decision", "approver", "expires_at"]
    list_filter = ["decision", "stage"]
    date_hierarchy = "created_at"
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
