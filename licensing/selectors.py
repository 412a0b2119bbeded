"""Reads: the licence catalogue, the policy, waivers, obligations and the licence check.

`version_obligations` and `licence_check` run a fixed number of queries whatever the depth of
the lineage: one recursive query for the ancestry's edges and training data, one for the
licences with their terms, one for the policy with its rules, one for waivers. They fetch plain
rows, not model instances: the gate runs this on every call.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.db import connection
from django.db.models import Prefetch, QuerySet, Value
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
from lineage.selectors import Ancestry, ancestry
from registry.models import ApprovalDecision, ModelVersion, Stage
from registry.selectors import (
    dataset_versions_visible_to,
    is_compliance,
    standing_of,
    standing_problem,
    valid_approvals,
    versions_visible_to,
)
from registry.types import Reader


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


def _rows(query: str, params: Sequence[Any], **parts: str) -> list[tuple[Any, ...]]:
    """Rows of one SQL query. The licence check reads this way (no model instances, no query
    building): the gate runs it on every call. `{licence}`, `{term}`, `{policy}`, `{rule}` in
    `query` are the tables' names; `parts` fill other placeholders (never with values)."""
    tables = {
        "licence": Licence._meta.db_table,
        "term": LicenceTerm._meta.db_table,
        "policy": LicencePolicy._meta.db_table,
        "rule": LicenceRule._meta.db_table,
    }
    with connection.cursor() as cursor:
        cursor.execute(query.format(**tables, **parts), params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def _json(value: Any) -> Any:
    """A JSON column as a raw cursor returns it (text, or None)."""
    return json.loads(value) if isinstance(value, str) else value


_ACTIVE_POLICY_SQL = """
SELECT p.id, p.name, p.revision, r.id,
       r.name, r.condition, r.severity, r.message, r.how_to_fix, r.category, r.term_type,
       r.scope, r.stages, r.uses, r.distributions, r.position, r.enabled, l.spdx_id
  FROM {policy} p
  LEFT JOIN {rule} r ON r.policy_id = p.id
  LEFT JOIN {licence} l ON l.id = r.licence_id
 WHERE p.active = %s
 ORDER BY r.position, r.id
"""


def active_policy_rules() -> tuple[dict[str, Any], list[RuleSpec]] | None:
    """The active policy (id, name, revision) and its rules in order, or None: one query (the
    policy joined to its rules and their licences)."""
    policy: dict[str, Any] | None = None
    rules: list[RuleSpec] = []
    for row in _rows(_ACTIVE_POLICY_SQL, [True]):
        policy_id, name, revision, rule_id, *rule, licence = row
        policy = {"id": policy_id, "name": name, "revision": revision}
        if rule_id is not None:
            rule_name, condition, severity, message, fix, category, term_type, scope = rule[:8]
            stages, uses, distributions, position, enabled = rule[8:]
            rules.append(
                RuleSpec(
                    name=rule_name,
                    condition=condition,
                    severity=severity,
                    message=message,
                    how_to_fix=fix,
                    category=category,
                    licence=licence or "",
                    term_type=term_type,
                    scope=scope,
                    stages=tuple(_json(stages)),
                    uses=tuple(_json(uses)),
                    distributions=tuple(_json(distributions)),
                    position=position,
                    enabled=bool(enabled),
                )
            )
    return None if policy is None else (policy, rules)


def waivers_visible_to(user: Reader) -> QuerySet[LicenceWaiver]:
    waivers = LicenceWaiver.objects.select_related(
        "version__model", "approver", "granted_by", "revoked_by"
    )
    if is_compliance(user):
        return waivers
    return waivers.filter(version__in=versions_visible_to(user).values("pk"))


_LICENCES_SQL = """
SELECT l.spdx_id, l.name, l.category, l.review_required, l.url, l.curated,
       t.id, t.type, t.clause, t.text, t.value, t.carries_through, t.note,
       t.attestation
  FROM {licence} l LEFT JOIN {term} t ON t.licence_id = l.id
 WHERE l.spdx_id IN ({ids})
 ORDER BY l.spdx_id, t.position, t.id
"""


def licence_infos(licence_ids: set[str]) -> dict[str, LicenceInfo]:
    """The licences with their terms in order: one query (a licence joined to its terms, a row
    per term or one row of NULL terms)."""
    ordered = sorted(licence_ids)
    rows = _rows(_LICENCES_SQL, ordered, ids=", ".join(["%s"] * len(ordered))) if ordered else []
    heads: dict[str, tuple[str, str, bool, str, bool]] = {}
    terms: dict[str, list[TermInfo]] = {}
    for spdx_id, name, category, review, url, curated, term_id, *term in rows:
        heads.setdefault(spdx_id, (name, category, bool(review), url, bool(curated)))
        if term_id is not None:
            type_, clause, text, value, carries_through, note, attestation = term
            terms.setdefault(spdx_id, []).append(
                TermInfo(
                    type_,
                    clause,
                    text,
                    _json(value),
                    tuple(_json(carries_through)),
                    note,
                    bool(attestation),
                )
            )
    infos = {
        spdx_id: LicenceInfo(spdx_id, *head, terms=tuple(terms.get(spdx_id, ())))
        for spdx_id, head in heads.items()
    }
    for licence_id in licence_ids - set(infos):
        infos[licence_id] = missing_licence_info(licence_id)
    return infos


def version_obligations(version: ModelVersion, reader: Reader | None = None) -> VersionObligations:
    """Everything the version owes, per source and licence alternative, each with its path. For
    a `reader`, ancestors and training data they may not see keep their licences but are named
    `model version #N (not visible to you)` (or `dataset version #N …`) in every source and
    path: a shared version may descend from another team's private one."""
    found = ancestry(version.pk)
    if reader is not None and not is_compliance(reader):
        found = _hidden_renamed(found, reader)
    lineage = LineageView(version, found)
    sources = collect_sources(lineage)
    return resolve_obligations(lineage, sources, licence_infos(licence_ids_of(sources)))


def _hidden_renamed(found: Ancestry, reader: Reader) -> Ancestry:
    # One query whatever the depth: the visible ones among the ancestors and the data.
    tagged = [
        queryset.filter(pk__in=list(ids)).order_by().annotate(kind=Value(kind))
        for queryset, ids, kind in (
            (versions_visible_to(reader), found.ancestors, "model"),
            (dataset_versions_visible_to(reader), found.datasets, "dataset"),
        )
    ]
    seen = set(tagged[0].values_list("kind", "pk").union(tagged[1].values_list("kind", "pk")))
    return dataclasses.replace(
        found,
        ancestors={
            pk: node
            if ("model", pk) in seen
            else dataclasses.replace(node, ref=_hidden("model", pk))
            for pk, node in found.ancestors.items()
        },
        datasets={
            pk: node
            if ("dataset", pk) in seen
            else dataclasses.replace(node, ref=_hidden("dataset", pk))
            for pk, node in found.datasets.items()
        },
    )


def _hidden(kind: str, pk: int) -> str:
    return f"{kind} version #{pk} (not visible to you)"


def licence_check(
    *,
    version: ModelVersion,
    reader: Reader | None = None,
    stage: str,
    use: str = "commercial",
    distribution: str = "hosted",
    now: datetime | None = None,
) -> LicenceCheck:
    """Evaluate the active licence policy for the version in this context; writes nothing."""
    active = active_policy_rules()
    obligations = version_obligations(version, reader)
    if active is None:
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
    policy, rules = active
    # What counting production approvals of these weights attest (see ATTESTED_TERM_TYPES).
    attested = frozenset(
        item
        for approval in valid_approvals(version, Stage.PRODUCTION, now=now)
        if approval.decision == ApprovalDecision.APPROVE
        and approval.holds_role  # type: ignore[attr-defined]  # annotations of standing_of
        and not approval.in_team  # type: ignore[attr-defined]
        for item in approval.attestations
    )
    approver = standing_of("approver_id", version.model.team_id)
    granter = standing_of("granted_by_id", version.model.team_id)
    rows = (
        LicenceWaiver.objects.filter(
            version_id=version.pk,
            artefact_digest=version.artefact_digest,
            revoked_at__isnull=True,
            expires_at__gt=now or timezone.now(),
        )
        .annotate(
            approver_holds_role=approver["holds_role"],
            approver_in_team=approver["in_team"],
            granter_holds_role=granter["holds_role"],
            granter_in_team=granter["in_team"],
        )
        .order_by("-created_at", "-id")
        .values_list(
            "id",
            "rule_name",
            "licence_id",
            "reason",
            "approver__username",
            "granted_by__username",
            "expires_at",
            "approver_holds_role",
            "approver_in_team",
            "granter_holds_role",
            "granter_in_team",
        )
    )
    # A waiver counts only while whoever approved and granted it still may; one that stopped
    # counting is kept to say why its violation blocks again.
    waivers: list[WaiverSpec] = []
    lapsed: list[tuple[WaiverSpec, str]] = []
    for row in rows:
        spec = WaiverSpec(*row[:7])
        approver_role, approver_team, granter_role, granter_team = row[7:]
        problem = _standing(spec.approver, approver_role, approver_team) or _standing(
            spec.granted_by, granter_role, granter_team
        )
        if problem:
            lapsed.append((spec, problem))
        else:
            waivers.append(spec)
    check = evaluate(
        obligations,
        rules,
        waivers,
        stage=stage,
        use=use,
        distribution=distribution,
        policy=policy,
        attestations=attested,
    )
    check.lapsed_waivers = lapsed
    return check


def _standing(username: str, holds_role: bool, in_team: bool) -> str | None:
    return standing_problem(username, SimpleNamespace(holds_role=holds_role, in_team=in_team))
