"""Admin of evidence-change proposals: compliance staff outside the owning team accept or
reject them, through the same services as the API; pending ones show on the version page."""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from registry import services
from registry.admin.governance import changes_table, evidence_html
from registry.admin_base import SAVED, ReadOnlyAdmin
from registry.errors import ServiceError
from registry.models import EvidenceProposal, ProposalKind
from registry.selectors import proposals_visible_to


class ProposingAdminMixin:
    """An admin edit of gate evidence that the service recorded as a proposal says so, instead
    of Django's "changed successfully", and stays on the page."""

    def response_change(self, request, obj):
        proposal = getattr(request, SAVED, None)
        if isinstance(proposal, EvidenceProposal):
            messages.warning(
                request,
                f"Nothing changed yet: this could weaken protected gate evidence, so it was "
                f"recorded as proposal #{proposal.pk} for a compliance officer outside the "
                "owning team to accept or reject.",
            )
            return redirect(request.get_full_path())
        return super().response_change(request, obj)  # type: ignore[misc]


class ConclusionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", "accept"), ("reject", "reject")])
    comment = forms.CharField(required=False, max_length=4000)


def conclude_view(model_admin, request, object_id):
    """Accept or reject one proposal; the service's refusal (separation of duties, a stale
    proposal, a missing reason) is shown as a message and nothing changes."""
    proposal = get_object_or_404(proposals_visible_to(request.user), pk=object_id)
    form = ConclusionForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Invalid conclusion: {form.errors.as_text()}")
    else:
        conclude = (
            services.evidence_proposal_accept
            if form.cleaned_data["decision"] == "accept"
            else services.evidence_proposal_reject
        )
        try:
            conclude(actor=request.user, proposal=proposal, comment=form.cleaned_data["comment"])
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Proposal #{proposal.pk} {form.cleaned_data['decision']}ed.")
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("admin:registry_evidenceproposal_change", proposal.pk)


@admin.register(EvidenceProposal)
class EvidenceProposalAdmin(ReadOnlyAdmin):
    list_display = ["id", "target", "kind", "status", "summary", "proposed_by", "proposed_at"]
    list_filter = ["status", "kind"]
    search_fields = ["version__model__name", "dataset_version__dataset__name", "reason"]
    list_select_related = [
        "version__model",
        "dataset_version__dataset",
        "proposed_by",
        "concluded_by",
    ]
    date_hierarchy = "proposed_at"
    change_form_template = "admin/registry/evidenceproposal/change_form.html"
    fields = readonly_fields = (
        "target",
        "kind",
        "status",
        "change",
        "weakening",
        "protected_because",
        "reason",
        "proposed_by",
        "proposed_at",
        "concluded_by",
        "concluded_at",
        "conclusion",
    )

    def get_queryset(self, request):
        return proposals_visible_to(request.user)

    def get_urls(self):
        view = require_POST(partial(conclude_view, self))
        return [
            path(
                "<path:object_id>/conclude/",
                self.admin_site.admin_view(view),
                name="registry_evidenceproposal_conclude",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="target")
    def target(self, proposal: EvidenceProposal):
        return str(proposal.target)

    @admin.display(description="what would change")
    def summary(self, proposal: EvidenceProposal):
        return "; ".join(proposal.weakening.values()) or ", ".join(proposal.changes)

    @admin.display(description="change")
    def change(self, proposal: EvidenceProposal):
        if proposal.kind == ProposalKind.FIELDS:
            return changes_table(proposal.before, proposal.changes)
        # A lineage change: its validated input, beside the lineage it was proposed against
        # (version and dataset version ids; `weakening` names them).
        return format_html(
            "<table class='changes'><thead><tr><th>Proposed ({})</th><th>Lineage when proposed"
            "</th></tr></thead><tbody><tr><td>{}</td><td>{}</td></tr></tbody></table>",
            proposal.get_kind_display().lower(),
            evidence_html(proposal.changes),
            evidence_html(proposal.before),
        )
