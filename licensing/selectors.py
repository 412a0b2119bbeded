"""Reads: the licence catalogue, the policy, waivers, obligations and the licence check.

`version_obligations` and `licence_check` run a fixed number of queries whatever the depth of
the lineage: one recursive query each for the ancestry's edges and training data (lineage's
`ancestor_ids`), two for the licences and their terms, two for the policy, one for waivers.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from licensing.models import (
    HubLicenceMapping,
    Licence,
    LicencePolicy,
    LicenceRule,
    LicenceTerm,
    LicenceWaiver,
)
from licensing.obligations import (
    LicenceInfo,
    LineageView,
    TermInfo,
    VersionObligations,
    collect_sources,
    licence_ids_of,
    missing_licence_info,
    resolve_obligations,
)
from licensing.policy import LicenceCheck, RuleSpec, WaiverSpec, evaluate
from lineage.models import LineageEdge, TrainingDataset
from lineage.selectors import TRAINED_ON_ROLES, ancestor_ids
from registry.models import ModelVersion
from registry.selectors import is_compliance, versions_visible_to


def licence_list() -> QuerySet[Licence]:
    """Every licence; the catalogue is public to every signed-in user."""
    return Licence.objects.all()


def licence_detail_queryset() -> QuerySet[Licence]:
    return Licence.objects.prefetch_related(
        Prefetch("terms", queryset=LicenceTerm.objects.order_by("position")),
        Prefetch("hub_ids", queryset=HubLicenceMapping.objects.order_by("hub_id")),
    )


def hub_mappings() -> QuerySet[HubLicenceMapping]:
    return HubLicenceMapping.objects.select_related("licence")


def active_policy() -> LicencePolicy | None:
    return LicencePolicy.objects.filter(active=True).select_related("updated_by").first()


def policy_rules(policy: LicencePolicy) -> QuerySet[LicenceRule]:
    return LicenceRule.objects.filter(policy=policy).select_related("licence")


def rule_spec(rule: LicenceRule) -> RuleSpec:
    return RuleSpec(
        name=rule.name,
        condition=rule.condition,
        severity=rule.severity,
        message=rule.message,
        how_to_fix=rule.how_to_fix,
        category=rule.category,
        licence=rule.licence.spdx_id if rule.licence_id else "",
        term_type=rule.term_type,
        scope=rule.scope,
        stages=tuple(rule.stages),
        uses=tuple(rule.uses),
        distributions=tuple(rule.distributions),
        position=rule.position,
        enabled=rule.enabled,
    )


def waivers_visible_to(user) -> QuerySet[LicenceWaiver]:
    waivers = LicenceWaiver.objects.select_related(
        "version__model", "approver", "granted_by", "revoked_by"
    )
    if is_compliance(user):
        return waivers
    return waivers.filter(version__in=versions_visible_to(user).values("pk"))


def active_waivers(version: ModelVersion, *, now: datetime | None = None) -> list[LicenceWaiver]:
    """Unrevoked, unexpired waivers granted for exactly these weights."""
    return list(
        LicenceWaiver.objects.filter(
            version_id=version.pk,
            artefact_digest=version.artefact_digest,
            revoked_at__isnull=True,
            expires_at__gt=now or timezone.now(),
        ).select_related("approver", "granted_by")
    )


def licence_infos(licence_ids: set[str]) -> dict[str, LicenceInfo]:
    rows = (
        Licence.objects.filter(spdx_id__in=licence_ids).prefetch_related(
            Prefetch("terms", queryset=LicenceTerm.objects.order_by("position"))
        )
        if licence_ids
        else []
    )
    infos = {
        row.spdx_id: LicenceInfo(
            id=row.spdx_id,
            name=row.name,
            category=row.category,
            review_required=row.review_required,
            url=row.url,
            curated=row.curated,
            terms=tuple(
                TermInfo(
                    type=term.type,
                    clause=term.clause,
                    text=term.text,
                    value=term.value,
                    carries_through=tuple(term.carries_through),
                    note=term.note,
                )
                for term in row.terms.all()
            ),
        )
        for row in rows
    }
    for licence_id in licence_ids - set(infos):
        infos[licence_id] = missing_licence_info(licence_id)
    return infos


def lineage_view(version: ModelVersion) -> LineageView:
    """The ancestry's edges and training-data uses: two queries, each one recursive walk."""
    within = ancestor_ids(version.pk, include_self=True)
    edges = LineageEdge.objects.filter(child_id__in=within).select_related("parent__model")
    uses = TrainingDataset.objects.filter(
        run__version_id__in=ancestor_ids(version.pk, include_self=True),
        role__in=TRAINED_ON_ROLES,
    ).select_related("run", "dataset_version__dataset")
    return LineageView(version, edges.order_by("id"), uses.order_by("id"))


def version_obligations(version: ModelVersion) -> VersionObligations:
    """Everything the version owes, per source and licence alternative, each with its path."""
    lineage = lineage_view(version)
    sources = collect_sources(lineage)
    return resolve_obligations(lineage, sources, licence_infos(licence_ids_of(sources)))


def licence_check(
    *,
    version: ModelVersion,
    stage: str,
    use: str = "commercial",
    distribution: str = "hosted",
    now: datetime | None = None,
) -> LicenceCheck:
    """Evaluate the active licence policy for the version in this context; writes nothing."""
    policy = active_policy()
    obligations = version_obligations(version)
    if policy is None:
        check = evaluate(
            obligations,
            [],
            [],
            stage=stage,
            use=use,
            distribution=distribution,
            policy={"name": None, "revision": None},
        )
        check.problems.append(
            "no licence policy is active; compliance staff must activate one in the admin"
        )
        return check
    waivers = [
        WaiverSpec(
            id=waiver.pk,
            rule_name=waiver.rule_name,
            licence_id=waiver.licence_id,
            reason=waiver.reason,
            approver=waiver.approver.username,
            granted_by=waiver.granted_by.username,
            expires_at=waiver.expires_at,
        )
        for waiver in active_waivers(version, now=now)
    ]
    return evaluate(
        obligations,
        [rule_spec(rule) for rule in policy_rules(policy)],
        waivers,
        stage=stage,
        use=use,
        distribution=distribution,
        policy={"id": policy.pk, "name": policy.name, "revision": policy.revision},
    )
