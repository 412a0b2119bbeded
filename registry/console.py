"""Reads behind the compliance console: a version's timeline, two versions side by side, and the
evidence pack an auditor takes away. Other apps add to each through `registry.plugins`."""

import csv
import io
import json
import zipfile
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F, Model, QuerySet
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from registry.audit import audit_verify_chain
from registry.gates import GateEvaluation, failing_checks, gate_evaluate, transition_problem
from registry.models import (
    Approval,
    ApprovalDecision,
    AuditEntry,
    CheckWaiver,
    GateDecision,
    ModelVersion,
    Stage,
)
from registry.plugins import (
    ComparisonSection,
    EvidenceDocument,
    Expiring,
    ExpiringProvider,
    TimelineEvent,
    TimelineProvider,
    WaiverLinks,
    plugins,
)
from registry.selectors import OVERVIEW_LIMIT, versions_visible_to
from registry.types import Reader

NEXT_STAGE: dict[str, str] = {"development": "staging", "staging": "production"}


def admin_url(object_type: str, object_id: Any) -> str:
    """The admin page of an object named as `app_label.modelname` and id, or '' if none."""
    app_label, _, model_name = object_type.partition(".")
    try:
        return reverse(f"admin:{app_label}_{model_name}_change", args=[object_id])
    except NoReverseMatch:
        return ""


def hold_url(version: ModelVersion) -> str:
    """Where to place a hold on `version`, when an app that holds versions is installed."""
    try:
        return f"{reverse('admin:lineage_hold_add')}?version={version.pk}"
    except NoReverseMatch:
        return ""


# Checks no waiver lifts: the move itself, the policy's existence and the approvals it wants.
UNWAIVABLE = frozenset({"transition", "policy", "approvals"})


def waive_links(evaluation: GateEvaluation, row: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, url) for each way to waive a failing check, each form pre-filled from the
    violation: the app's own waivers where it keeps them (licence rules), else a check waiver
    on the governance page."""
    for contribution in plugins.contributions(WaiverLinks):
        if contribution.check == row["check"]:
            return contribution.links(evaluation, row)
    if row["check"] in UNWAIVABLE:
        return []
    query = urlencode(
        {
            "stage": evaluation.to_stage,
            "use": evaluation.use,
            "distribution": evaluation.distribution,
            "waive": row["check"],
        }
    )
    url = reverse("admin:registry_modelversion_governance", args=[evaluation.version_id])
    return [(f"Waive {row['check']}…", f"{url}?{query}#waive-form")]


def object_admin_url(obj: Model) -> str:
    return admin_url(obj._meta.label_lower, obj.pk)


def version_audit_entries(version: ModelVersion) -> QuerySet[AuditEntry]:
    """Every audit entry about the version itself: registration, edits, licence conclusions,
    approvals, waivers, promotions and refusals (the services record them on the version)."""
    return AuditEntry.objects.filter(
        object_type=ModelVersion._meta.label_lower, object_id=str(version.pk)
    ).order_by("at", "id")


def _audit_text(entry: AuditEntry) -> str:
    after = entry.after if isinstance(entry.after, dict) else {}
    before = entry.before if isinstance(entry.before, dict) else {}
    if before:
        changed = sorted(key for key in after if before.get(key) != after.get(key))
        detail = ", ".join(f"{key}: {before.get(key)!r} → {after[key]!r}" for key in changed[:6])
    else:
        # A new record (an approval, a waiver): what it says, briefly.
        detail = ", ".join(
            f"{key}: {str(value)[:80]}" for key, value in list(after.items())[:4] if value
        )
    return f"{entry.action} by {entry.actor_name}" + (f" ({detail})" if detail else "")


def _audit_event(entry: AuditEntry) -> tuple[str, str]:
    """An audit entry's kind and text; the compliance recheck's flags read as what they mean,
    with the reasons."""
    after = entry.after if isinstance(entry.after, dict) else {}
    if entry.action == "version.out_of_compliance":
        reasons = [
            f"{row.get('check')}: {reason}"
            for row in after.get("failing") or []
            for reason in row.get("reasons") or ["failed"]
        ]
        return (
            "out of compliance",
            f"no longer passes the {after.get('stage')} gate: " + "; ".join(reasons),
        )
    if entry.action == "version.back_in_compliance":
        return "back in compliance", f"passes the {after.get('stage')} gate again"
    return entry.action.partition(".")[0].replace("_", " "), _audit_text(entry)


def version_timeline(version: ModelVersion) -> list[TimelineEvent]:
    """The version's history, oldest first: its audit entries, its gate decisions and what the
    other apps record about it. Two queries plus one or two per provider, whatever its size."""
    events = [
        TimelineEvent(
            entry.at,
            *_audit_event(entry),
            reverse("admin:registry_auditentry_change", args=[entry.pk]),
        )
        for entry in version_audit_entries(version)
    ]
    for decision in version.decisions.select_related("actor"):
        outcome = "passed" if decision.passed else "refused"
        events.append(
            TimelineEvent(
                decision.decided_at,
                "gate decision",
                f"{decision.from_stage} → {decision.to_stage} ({decision.use}, "
                f"{decision.distribution}) {outcome}, asked by {decision.actor}",
                reverse("admin:registry_gatedecision_change", args=[decision.pk]),
            )
        )
    for provider in plugins.contributions(TimelineProvider):
        events.extend(provider.events(version))
    return sorted(events, key=lambda event: event.at)


def stage_verdict(
    *,
    version: ModelVersion,
    stage: str,
    actor: Reader,
    use: str = "commercial",
    distribution: str = "hosted",
) -> GateEvaluation:
    """The gate's answer for `stage`. For the stage the version is already in, whether it still
    meets that stage's policy: the same checks without the move itself, so a released version
    is not reported as failing for being "already in production"."""
    evaluation = gate_evaluate(
        version=version, stage=stage, actor=actor, use=use, distribution=distribution
    )
    if stage != version.stage:
        return evaluation
    rows = [row for row in evaluation.results if row["check"] != "transition"]
    return replace(evaluation, results=rows, passed=not failing_checks(rows))


def next_stage(version: ModelVersion, last: GateDecision | None) -> str | None:
    """Where the version is heading: the stage last asked for when it lies ahead (a version
    may skip staging), else the next one in order; None once released or archived."""
    if last is not None and transition_problem(version.stage, last.to_stage) is None:
        return last.to_stage
    return NEXT_STAGE.get(version.stage)


def version_verdicts(*, version: ModelVersion, actor: Reader) -> list[GateEvaluation]:
    """What the version page opens on: the verdict for the stage it is in (once past
    development) and for the stage it is heading to, for the use last asked about."""
    last = version.decisions.only("to_stage", "use", "distribution").first()
    stages = [version.stage] if version.stage in (Stage.STAGING, Stage.PRODUCTION) else []
    if heading := next_stage(version, last):
        stages.append(heading)
    return [
        stage_verdict(
            version=version,
            stage=stage,
            actor=actor,
            use=last.use if last else "commercial",
            distribution=last.distribution if last else "hosted",
        )
        for stage in stages
    ]


def production_counterpart(reader: Reader, version: ModelVersion) -> ModelVersion | None:
    """What `version` would be compared with by default: the newest production version of the
    same model, other than itself."""
    return (
        versions_visible_to(reader)
        .filter(model_id=version.model_id, stage=Stage.PRODUCTION)
        .exclude(pk=version.pk)
        .order_by("-registered_at", "-id")
        .first()
    )


def core_facts(reader: Reader, version: ModelVersion) -> dict[str, Any]:
    return {
        "stage": version.stage,
        "risk tier": version.risk_tier,
        "licence declared": version.licence_declared or "—",
        "licence concluded": version.licence_concluded or "—",
        "artefact digest (SHA-256)": version.artefact_digest,
        "artefact size (bytes)": version.artefact_size,
        "parameters": version.parameter_count,
        "uses sensitive personal data": version.uses_sensitive_personal_data,
        "registered": f"{version.registered_at:%Y-%m-%d %H:%M} by {version.registered_by}",
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return float(value)


def significant(value: Any, digits: int = 3) -> str:
    """Numbers to three significant digits (integers whole); anything else as text."""
    number = _number(value)
    if number is None:
        return "—" if value in (None, "") else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{number:.{digits}g}"


@dataclass(frozen=True)
class ComparedRow:
    label: str
    left: str
    right: str
    delta: str
    differs: bool


def _rows(left: dict[str, Any], right: dict[str, Any]) -> list[ComparedRow]:
    rows = []
    for label in [*left, *(key for key in right if key not in left)]:
        a, b = left.get(label), right.get(label)
        x, y = _number(a), _number(b)
        delta = ""
        if x is not None and y is not None and x == y:
            pass
        elif x is not None and y is not None and not isinstance(a, int | Decimal):
            delta = f"{y - x:+.3g}"
        elif x is not None and y is not None:
            delta = f"{y - x:+,.0f}"
        rows.append(ComparedRow(label, significant(a), significant(b), delta, a != b))
    return rows


def version_comparison(
    reader: Reader, left: ModelVersion, right: ModelVersion
) -> list[dict[str, Any]]:
    """`left` and `right` side by side, section by section; a delta is `right - left`."""
    sections = [ComparisonSection("Version", core_facts), *plugins.contributions(ComparisonSection)]
    return [
        {
            "title": section.title,
            "rows": _rows(section.facts(reader, left), section.facts(reader, right)),
        }
        for section in sections
    ]


def version_facts(reader: Reader, version: ModelVersion) -> list[dict[str, Any]]:
    """The comparison's sections for one version, as the evidence pack shows them."""
    sections = [ComparisonSection("Version", core_facts), *plugins.contributions(ComparisonSection)]
    return [
        {
            "title": section.title,
            "rows": [(label, significant(value)) for label, value in facts.items()],
        }
        for section in sections
        if (facts := section.facts(reader, version))
    ]


AUDIT_COLUMNS = ["seq", "id", "at", "actor", "action", "object", "before", "after", "hash"]


def audit_csv(entries: list[AuditEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for entry in entries:
        writer.writerow(
            [
                entry.seq or "",
                entry.pk,
                entry.at.isoformat(),
                entry.actor_name,
                entry.action,
                entry.object_repr,
                json.dumps(entry.before, sort_keys=True, cls=DjangoJSONEncoder),
                json.dumps(entry.after, sort_keys=True, cls=DjangoJSONEncoder),
                entry.hash or "unsealed",
            ]
        )
    return out.getvalue()


def render_pdf(html: str) -> bytes:
    """HTML to PDF with xhtml2pdf: pure Python, so a fresh machine needs no system library."""
    from xhtml2pdf import pisa

    out = io.BytesIO()
    status = pisa.CreatePDF(html, dest=out, encoding="utf-8")
    if status.err:
        raise RuntimeError(f"the evidence PDF could not be rendered ({status.err} errors)")
    return out.getvalue()


def evidence_pack(
    *, reader: Reader, version: ModelVersion, evaluation: GateEvaluation
) -> tuple[str, bytes]:
    """The zip an auditor takes away: the report (PDF, the verdict on page one), every audit
    entry about the version as CSV with the chain's verification, and the documents the other
    apps render (the SPDX 3 document, the model card). Returns its file name and bytes."""
    entries = list(version_audit_entries(version).select_related(None))
    chain = audit_verify_chain()
    generated_at = timezone.now()
    context = {
        "version": version,
        "evaluation": evaluation,
        "facts": version_facts(reader, version),
        "timeline": version_timeline(version),
        "entries": entries,
        "chain": chain,
        "generated_at": generated_at,
        "documents": plugins.contributions(EvidenceDocument),
    }
    html = render_to_string("registry/evidence_pack.html", context)
    stem = f"{version.model.name.replace('/', '_')}-{version.version}-evidence"
    verification = (
        f"Audit chain verified at {generated_at.isoformat()}: {chain.checked} sealed entries "
        f"checked, {chain.unsealed} not sealed yet; "
        + (
            "intact.\n"
            if chain.ok
            else f"BROKEN at entry #{chain.first_broken_id}: {chain.problem}.\n"
        )
        + "".join(f"entry #{entry.pk} seq {entry.seq} hash {entry.hash}\n" for entry in entries)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as pack:
        pack.writestr(f"{stem}/report.pdf", render_pdf(html))
        pack.writestr(f"{stem}/audit-entries.csv", audit_csv(entries))
        pack.writestr(f"{stem}/audit-chain-verification.txt", verification)
        pack.writestr(f"{stem}/gate-evaluation.json", json.dumps(evaluation.to_dict(), indent=2))
        for document in plugins.contributions(EvidenceDocument):
            pack.writestr(f"{stem}/{document.filename}", document.render(reader, version))
    return f"{stem}.zip", buffer.getvalue()


def expiring_evidence(*, within: timedelta | None = None) -> list[Expiring]:
    """Approvals and waivers still in force that lapse within `within` (default: the
    PEDIGREE_EXPIRY_WARNING_DAYS setting), soonest first, with what the other apps add (licence
    waivers). Two queries plus one per provider, whatever the registry size."""
    now = timezone.now()
    before = now + (within or timedelta(days=settings.PEDIGREE_EXPIRY_WARNING_DAYS))
    soon = {"expires_at__gt": now, "expires_at__lte": before}
    rows = [
        Expiring(
            f"{approval.stage} approval",
            approval.version,
            approval.expires_at,
            f"approved by {approval.approver}; renew it before it lapses or the version falls "
            f"out of compliance",
            reverse("admin:registry_modelversion_governance", args=[approval.version_id])
            + "#approve-form",
        )
        for approval in Approval.objects.filter(
            decision=ApprovalDecision.APPROVE,
            artefact_digest=F("version__artefact_digest"),
            **soon,
        )
        .select_related("version__model", "approver")
        .order_by("expires_at")[:OVERVIEW_LIMIT]
    ]
    rows += [
        Expiring(
            f"waiver of {waiver.check_name}",
            waiver.version,
            waiver.expires_at,
            f"granted by {waiver.granted_by}; fix what it waives or grant a new waiver",
            reverse("admin:registry_checkwaiver_change", args=[waiver.pk]),
        )
        for waiver in CheckWaiver.objects.filter(revoked_at__isnull=True, **soon)
        .select_related("version__model", "granted_by")
        .order_by("expires_at")[:OVERVIEW_LIMIT]
    ]
    for provider in plugins.contributions(ExpiringProvider):
        rows += [row for row in provider.before(before) if row.expires_at > now]
    return sorted(rows, key=lambda row: row.expires_at)[:OVERVIEW_LIMIT]
