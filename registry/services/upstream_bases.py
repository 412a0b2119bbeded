"""The bases an imported card declares: which version stands for each, unresolved upstream
references for those not imported yet (filled in place when they are), and the bounded walk
that imports bases too (`with_bases`)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from registry import hub
from registry.audit import audit_record
from registry.errors import Conflict, InvalidInput
from registry.models import ModelKind, ModelVersion, RegisteredModel, Team, Visibility
from registry.plugins import UpstreamLineage, UpstreamParent, plugins
from registry.services._common import validate_fields
from registry.services.catalogue import model_create
from registry.types import Actor

# How many levels of bases `with_bases` follows below the imported model, and how many
# repositories one import may read in all: real families are two or three levels deep.
MAX_BASE_DEPTH = 4
MAX_BASE_IMPORTS = 16
UNRESOLVED_LABEL = "unresolved"


@dataclass(frozen=True)
class Planned:
    """One revision read and judged, waiting to be recorded."""

    upstream: hub.HubSnapshot
    licence: hub.LicenceMapping
    relation: hub.RelationGuess
    # The manifest as stored (bounded by PEDIGREE_MAX_MANIFEST_BYTES).
    manifest: dict[str, Any]


def check_base_revisions(pins: dict[str, str]) -> dict[str, str]:
    """`base_revisions`: repo id → the full commit SHA of that base to link."""
    for repo_id, revision in pins.items():
        try:
            hub.check_repo_id(repo_id)
        except hub.HubError as error:
            raise InvalidInput.for_field("base_revisions", error.message) from None
        if not isinstance(revision, str) or not hub.REVISION_SHA.match(revision):
            raise InvalidInput.for_field(
                "base_revisions",
                f"Pin base {repo_id} by its full 40-character commit SHA, not {revision!r}.",
            )
    return dict(pins)


def plan_bases(
    top: Planned, *, pins: dict[str, str], read: Callable[[str, str | None], Planned]
) -> list[Planned]:
    """`top` and every base it declares that is not imported yet, recursively, bases first.
    A cycle or a family deeper than `MAX_BASE_DEPTH` is refused before anything is written."""
    ordered: list[Planned] = []
    seen = {top.upstream.repo_id}

    def visit(planned: Planned, path: tuple[str, ...]) -> None:
        for base in planned.upstream.card.base_models:
            if base in path:
                raise InvalidInput.for_field(
                    "base_model",
                    "The declared bases form a cycle: "
                    f"{' → '.join((*path, base))}; a model cannot be built from itself. Fix "
                    f"`base_model` in the card of {planned.upstream.repo_id}.",
                    code="base_model_cycle",
                )
            if base in seen or _imported(base, pins.get(base)):
                continue
            if len(path) > MAX_BASE_DEPTH:
                raise InvalidInput.for_field(
                    "base_model",
                    f"{' → '.join((*path, base))} goes more than {MAX_BASE_DEPTH} levels of "
                    "`base_model` deep; import the deepest bases first, then this model.",
                    code="base_model_too_deep",
                )
            seen.add(base)
            if len(seen) > MAX_BASE_IMPORTS:
                raise InvalidInput.for_field(
                    "base_model",
                    f"The bases of {top.upstream.repo_id} name more than {MAX_BASE_IMPORTS} "
                    "repositories; import some of them first.",
                    code="base_model_too_many",
                )
            found = read(base, pins.get(base))
            visit(found, (*path, base))
            ordered.append(found)

    visit(top, (top.upstream.repo_id,))
    return [*ordered, top]


def _imported(repo_id: str, revision: str | None) -> bool:
    versions = ModelVersion.objects.filter(hub_repo_id=repo_id, unresolved=False)
    if revision is not None:
        versions = versions.filter(hub_revision=revision)
    return versions.exists()


def reference_of(repo_id: str, revision: str) -> ModelVersion | None:
    """The unresolved reference that importing `repo_id@revision` fills: one pinned at that
    revision, else one naming no revision."""
    return (
        ModelVersion.objects.filter(hub_repo_id=repo_id, unresolved=True)
        .filter(Q(hub_revision=revision) | Q(hub_revision=""))
        .select_related("model", "model__team")
        .order_by("-hub_revision")  # the pinned one first
        .first()
    )


def reference_resolve(
    *, actor: Actor, reference: ModelVersion, label: str, evidence: dict[str, Any]
) -> ModelVersion:
    """Fill an unresolved reference in place with the imported revision, and re-pin the edges
    that point at it."""
    before = {"version": reference.version, "hub_revision": reference.hub_revision}
    reference.version = label
    reference.unresolved = False
    for name, value in evidence.items():
        setattr(reference, name, value)
    validate_fields(reference)
    reference.save()
    audit_record(
        actor=actor,
        action="version.resolve_upstream",
        obj=reference,
        before=before,
        after={
            "version": label,
            "hub_revision": reference.hub_revision,
            "digest": reference.artefact_digest,
        },
    )
    for lineage in plugins.contributions(UpstreamLineage):
        lineage.resolved(actor, reference)
    return reference


def bases_link(
    *, actor: Actor, team: Team, child: ModelVersion, planned: Planned, pins: dict[str, str]
) -> None:
    """Record the card's bases as parents of `child`, when an app keeps the lineage."""
    lineage = plugins.contributions(UpstreamLineage)
    declared = planned.upstream.card.base_models
    if not lineage or not declared:
        return
    relation = planned.relation
    parents = []
    for repo_id in declared:
        version, newest = _base_version(
            actor=actor, team=team, repo_id=repo_id, pinned=pins.get(repo_id)
        )
        parents.append(
            UpstreamParent(
                version=version,
                relation=relation.relation,
                inferred=relation.inferred,
                evidence=list(relation.evidence),
                newest=newest,
            )
        )
    lineage[0].record(actor, child, parents)


def _base_version(
    *, actor: Actor, team: Team, repo_id: str, pinned: str | None
) -> tuple[ModelVersion, bool]:
    """The version standing for a declared base, and whether it was taken as the newest one
    imported (no revision pinned)."""
    versions = ModelVersion.objects.filter(hub_repo_id=repo_id).select_related("model")
    if pinned is not None:
        versions = versions.filter(hub_revision=pinned)
    found = versions.filter(unresolved=False).order_by("-registered_at", "-pk").first()
    if found is not None:
        return found, pinned is None
    reference = versions.filter(unresolved=True).order_by("-hub_revision").first()
    if reference is None:
        reference = _reference_create(actor=actor, team=team, repo_id=repo_id, pinned=pinned)
    return reference, pinned is None


def _reference_create(
    *, actor: Actor, team: Team, repo_id: str, pinned: str | None
) -> ModelVersion:
    model = RegisteredModel.objects.filter(name=repo_id).first()
    if model is None:
        model = model_create(
            actor=actor,
            name=repo_id,
            kind=ModelKind.UPSTREAM,
            team=team,
            visibility=Visibility.INTERNAL,
            description=f"Named as a base model; not imported yet ({hub.repo_url(repo_id)})",
        )
    elif model.kind != ModelKind.UPSTREAM:
        raise Conflict.for_field(
            "base_model",
            f"The card names {repo_id} as a base, but {repo_id} is registered as a {model.kind} "
            "model; upstream models are named by their Hub repo id, so rename that model first.",
        )
    label = pinned[:12] if pinned else UNRESOLVED_LABEL
    reference = ModelVersion(
        model=model,
        version=label,
        artefact_digest="",
        unresolved=True,
        hub_repo_id=repo_id,
        hub_revision=pinned or "",
        artefact_uri=hub.repo_url(repo_id, pinned),
        description="Unresolved upstream reference: a base named by a model card, not imported "
        "yet. It has no artefact and no licence evidence; import the repository to resolve it.",
        registered_by=actor,
    )
    validate_fields(reference, exclude=["artefact_digest"])
    reference.save(force_insert=True)
    audit_record(
        actor=actor,
        action="version.reference_create",
        obj=reference,
        after={"repo_id": repo_id, "revision": pinned, "label": label},
    )
    return reference


def require_resolved(version: ModelVersion, field: str = "version") -> None:
    """Governance acts on evidence: an unresolved reference has none to approve or judge."""
    if version.unresolved:
        raise InvalidInput.for_field(
            field,
            f"{version} is an unresolved upstream reference ({version.hub_repo_id} is named as a "
            "base but not imported): it has no artefact to judge. Import it first "
            f"(`pedigree import-hf {version.hub_repo_id}`).",
            code="unresolved_reference",
        )
