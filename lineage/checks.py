"""Gate checks contributed by lineage, registered from `LineageConfig.ready()`."""

from typing import Any

from lineage.models import Relation, TrainingRun
from lineage.selectors import (
    active_holds_on,
    ancestry,
    descendant_ids,
    fetch_ids,
    gate_parent_edges,
    trained_on_ids,
)
from registry.gates import CheckResult, GateContext
from registry.models import DatasetVersion

CHECK_NAME = "lineage_health"


def hold_reason(hold, version_id: int) -> str:
    """One line saying why a version is held, naming the version the hold was placed on."""
    where = "held" if hold.version_id == version_id else f"held through its ancestor {hold.version}"
    return (
        f"{where}: {hold.reason} (hold #{hold.pk}, {hold.get_category_display().lower()}, "
        f"placed by {hold.placed_by.username} on {hold.placed_at:%Y-%m-%d %H:%M} UTC)"
    )


def lineage_health(context: GateContext) -> CheckResult:
    """Fails while the version or any ancestor is on hold, when a parent's artefact no longer
    matches the digest pinned on its lineage edge, when the version or an ancestor is an
    unresolved upstream reference, and (for production) while a relation is unknown. Relations
    an import inferred and nobody confirmed are listed in the evidence."""
    version = context.version
    holds = list(
        active_holds_on(version.pk).only(  # what the reasons and evidence name
            "category",
            "reason",
            "placed_at",
            "version__version",
            "version__model__name",
            "placed_by__username",
        )
    )
    edges = gate_parent_edges(context)
    reasons = [hold_reason(hold, version.pk) for hold in holds]
    reasons += [
        f"parent {edge.parent} now has artefact {edge.parent.artefact_digest[:12]}…, not the "
        f"{edge.parent_digest[:12]}… pinned when the lineage was recorded"
        for edge in edges
        if edge.parent.artefact_digest != edge.parent_digest and edge.parent_digest
    ]
    above = ancestry(version.pk)  # walked once per evaluation (registry.memo)
    if version.unresolved:
        reasons.append(_unresolved_reason(str(version), version.hub_repo_id, "it is"))
    reasons += [
        _unresolved_reason(node.ref, node.ref.rsplit("@", 1)[0], f"its ancestor {node.ref} is")
        for node in above.ancestors.values()
        if node.unresolved
    ]

    def name(version_id: int) -> str:
        return str(version) if version_id == version.pk else above.ancestors[version_id].ref

    unknown = [
        f"{name(edge.child_id)} was made from {name(edge.parent_id)} in an unknown way"
        for edge in above.edges
        if edge.relation == Relation.UNKNOWN
    ]
    if context.stage == "production":
        reasons += [
            f"{line} (relation 'unknown'); production needs it resolved: record the relation "
            "(`pedigree parent correct`, or PATCH the edge under the version's parents/)"
            for line in unknown
        ]
    unconfirmed = [
        f"{name(edge.child_id)} —{edge.relation}→ {name(edge.parent_id)}"
        for edge in above.edges
        if edge.inferred
    ]
    return CheckResult(
        check=CHECK_NAME,
        passed=not reasons,
        reasons=reasons,
        evidence={
            "holds": [
                {
                    "id": hold.pk,
                    "on": str(hold.version),
                    "on_version_id": hold.version_id,
                    "reason": hold.reason,
                    "placed_by": hold.placed_by.username,
                    "placed_at": hold.placed_at.isoformat(),
                }
                for hold in holds
            ],
            "parents": [
                {
                    "version_id": edge.parent_id,
                    "ref": str(edge.parent),
                    "relation": edge.relation,
                    "pinned_digest": edge.parent_digest,
                }
                for edge in edges
            ],
            "unresolved_ancestors": [
                node.ref for node in above.ancestors.values() if node.unresolved
            ],
            "unknown_relations": unknown,
            # Inferred by an import from the card and files; compliance confirms them.
            "unconfirmed_relations": unconfirmed,
        },
    )


def _unresolved_reason(ref: str, repo_id: str, subject: str) -> str:
    return (
        f"{subject} an unresolved upstream reference ({ref}): a base a model card names but "
        f"nobody imported, so it has no artefact and no licence evidence; import it "
        f"(`pedigree import-hf {repo_id}`)"
    )


def training_run_people(version) -> set[int]:
    """Who ran and recorded the version's training run produced it: they may not approve it."""
    run = (
        TrainingRun.objects.filter(version_id=version.pk)
        .values_list("run_by_id", "recorded_by_id")
        .first()
    )
    return set(run) if run else set()


def lineage_evidence(version) -> dict[str, Any]:
    """What an approval binds to of the lineage (one query): the parents and how the version
    was made of them, the licences of every ancestor, and the licences of the data the version
    and its ancestors were trained on."""
    found = ancestry(version.pk)

    def licences(node) -> dict[str, str]:
        return {"declared": node.licence_declared, "concluded": node.licence_concluded}

    return {
        "parents": {
            found.ancestors[edge.parent_id].ref: edge.relation
            for edge in found.edges
            if edge.child_id == version.pk
        },
        "ancestors": {node.ref: licences(node) for node in found.ancestors.values()},
        "training_data": {node.ref: licences(node) for node in found.datasets.values()},
    }


def evidence_users(obj) -> list[int]:
    """The versions whose evidence includes `obj`: a version's descendants, or the versions
    trained on a dataset version (directly or through an ancestor)."""
    if isinstance(obj, DatasetVersion):
        return fetch_ids(trained_on_ids(obj.pk))
    return fetch_ids(descendant_ids(obj.pk))
