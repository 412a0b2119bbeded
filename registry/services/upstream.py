"""Upstream import: one revision of a Hugging Face Hub model recorded as an upstream version."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from pedigree_client.artefacts import (
    ArtefactError,
    ArtefactProgress,
    resolve_inside_roots,
    weight_parameters,
)
from registry import hub
from registry.audit import audit_record
from registry.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionRefused,
    ServiceError,
    Unavailable,
)
from registry.models import ModelKind, ModelVersion, RegisteredModel, Team, Visibility
from registry.plugins import UpstreamLineage, plugins
from registry.selectors import artefact_areas_of, versions_visible_to
from registry.services import upstream_bases as bases
from registry.services._common import artefact_invalid, require_team_write
from registry.services.catalogue import model_create, version_create
from registry.services.manifests import manifest_stored
from registry.services.upstream_datasets import hub_dataset_references, hub_datasets
from registry.types import Actor

_HUB_ERROR_STATUS = {
    "invalid": InvalidInput,
    "not_found": NotFound,
    "forbidden": PermissionRefused,
    "unavailable": Unavailable,
}
_HUB_ERROR_FIELDS = {
    "outside_roots": "snapshot_dir",
    "hub_revision_invalid": "revision",
    "hub_revision_not_found": "revision",
    "revision_required": "revision",
    "snapshot_revision_mismatch": "revision",
    "snapshot_repo_mismatch": "snapshot_dir",
    "snapshot_mixed_revisions": "snapshot_dir",
}


def _hub_error(error: hub.HubError) -> ServiceError:
    field = error.field or _HUB_ERROR_FIELDS.get(error.code, "repo_id")
    return _HUB_ERROR_STATUS[error.kind].for_field(field, error.message, code=error.code)


def _imported_version(actor: Actor, repo_id: str, revision: str) -> ModelVersion | None:
    found = (
        ModelVersion.objects.filter(hub_repo_id=repo_id, hub_revision=revision, unresolved=False)
        .select_related("model", "model__team", "registered_by")
        .first()
    )
    if found is not None and not versions_visible_to(actor).filter(pk=found.pk).exists():
        raise Conflict.for_field(
            "repo_id",
            f"{repo_id}@{revision} is already registered under a model you cannot see; ask "
            "compliance staff to share it.",
        )
    return found


def _snapshot_folder(actor: Actor, raw: str, *, confine: bool) -> Path:
    try:
        if confine:
            roots = [*(Path(root) for root in settings.ARTEFACT_ROOTS), hub.cache_dir()]
            # The Hub cache holds what was downloaded from the Hub, for every team alike.
            areas = artefact_areas_of(actor)
            folder = resolve_inside_roots(
                raw, roots, areas=None if areas is None else [*areas, hub.cache_dir()]
            )
        else:
            folder = Path(raw).expanduser().resolve(strict=True)
    except ArtefactError as error:
        raise artefact_invalid("snapshot_dir", error) from None
    except OSError:
        raise InvalidInput.for_field(
            "snapshot_dir", f"Nothing exists at {raw!r}; check the path.", code="missing_file"
        ) from None
    if not folder.is_dir():
        raise InvalidInput.for_field(
            "snapshot_dir",
            f"{raw!r} is not a folder; give the folder holding README.md and the weights.",
            code="not_a_directory",
        )
    return folder


def _hub_card(
    upstream: hub.HubSnapshot,
    licence: hub.LicenceMapping,
    dataset_licences: dict[str, dict[str, str]],
) -> dict[str, Any]:
    card = upstream.card
    return {
        "content": card.content,
        "metadata": card.metadata,
        "license": card.license,
        "license_name": card.license_name,
        "license_link": card.license_link,
        "licence": licence.to_dict(),
        "base_models": card.base_models,
        "base_model_relation": card.base_model_relation,
        "datasets": card.datasets,
        # Where each dataset's licence came from (its card in the cache, or nowhere), as read
        # when this import created the dataset's reference version.
        "dataset_licences": dataset_licences,
        "pipeline_tag": card.pipeline_tag,
        "library_name": card.library_name,
        "tags": card.tags,
        "gated": upstream.gated,
        "excluded_files": upstream.excluded,
        "source": {"kind": upstream.source, "location": upstream.location},
    }


def _upstream_model(*, actor: Actor, team: Team, repo_id: str, task: str = "") -> RegisteredModel:
    model = RegisteredModel.objects.filter(name=repo_id).select_related("team").first()
    if model is None:
        return model_create(
            actor=actor,
            name=repo_id,
            kind=ModelKind.UPSTREAM,
            team=team,
            visibility=Visibility.INTERNAL,
            task=task[:64],
            description=f"Imported from {hub.repo_url(repo_id)}",
        )
    if model.kind != ModelKind.UPSTREAM:
        raise Conflict.for_field(
            "repo_id",
            f"{model.name} is registered as a {model.kind} model, but upstream models are named "
            "by their Hub repo id; rename that model first.",
        )
    return model


def _upstream_record(
    *, actor: Actor, team: Team, planned: bases.Planned, caches: list[Path]
) -> ModelVersion:
    upstream, licence = planned.upstream, planned.licence
    card = upstream.card
    reference = bases.reference_of(upstream.repo_id, upstream.revision)
    model = (
        None
        if reference is not None
        else _upstream_model(
            actor=actor, team=team, repo_id=upstream.repo_id, task=card.pipeline_tag or ""
        )
    )
    datasets = hub_datasets(actor=actor, team=team, hub_ids=card.datasets)
    training_data = hub_dataset_references(actor=actor, datasets=datasets, caches=caches)
    dataset_licences = {
        read.hub_id: read.to_dict() for _, read in training_data if read is not None
    }
    evidence: dict[str, Any] = {
        "artefact_digest": upstream.manifest.digest,
        "artefact_size": upstream.manifest.total_size,
        "parameter_count": weight_parameters(upstream.manifest.parameters_by_dtype),
        "artefact_manifest": planned.manifest,
        "artefact_uri": upstream.url,
        "licence_declared": licence.expression,
        "licence_review_required": licence.review_required,
        "hub_repo_id": upstream.repo_id,
        "hub_revision": upstream.revision,
        "hub_card": _hub_card(upstream, licence, dataset_licences),
    }
    if model is None:
        assert reference is not None
        version = bases.reference_resolve(
            actor=actor, reference=reference, label=upstream.revision[:12], evidence=evidence
        )
    else:
        version = version_create(
            actor=actor, model=model, version=upstream.revision[:12], **evidence
        )
    for lineage in plugins.contributions(UpstreamLineage):
        lineage.training_data(actor, version, [used for used, _ in training_data])
    audit_record(
        actor=actor,
        action="version.import_hf",
        obj=version,
        after={
            "repo_id": upstream.repo_id,
            "revision": upstream.revision,
            "source": upstream.source,
            "licence": licence.to_dict(),
            "datasets": [dataset.name for dataset in datasets],
            "training_data": [str(used) for used, _ in training_data],
            "base_models": card.base_models,
            "excluded_files": upstream.excluded,
            "resolved_reference": reference is not None,
        },
    )
    return version


def upstream_import(
    *,
    actor: Actor,
    team: Team,
    repo_id: str,
    revision: str | None = None,
    snapshot_dir: str | None = None,
    confine_snapshot: bool = True,
    progress: ArtefactProgress | None = None,
    with_bases: bool = False,
    base_revisions: dict[str, str] | None = None,
) -> tuple[ModelVersion, bool]:
    """Record one revision of a Hugging Face Hub model as an upstream version; returns it and
    whether it was created.

    The model is named by the repo id (kind upstream, visible org-wide), the version by the
    first 12 characters of the commit SHA, which is pinned in full in `hub_revision`. The card's
    licence, datasets (created as dataset records where missing) and base models are recorded,
    and the raw card is kept in `hub_card`. Each declared base becomes a parent (through the
    app providing `UpstreamLineage`): the version of it named in `base_revisions`, else the
    newest one imported, else an unresolved reference that importing the base fills in later.
    `with_bases` imports bases not yet imported too, recursively and bounded, from the local
    cache (offline) or the Hub, all in one transaction. Importing a repo+revision again returns
    the existing version. `snapshot_dir` must lie inside the artefact roots or the local HF
    cache unless `confine_snapshot` is False (server operators, `manage.py import_hf`).
    """
    require_team_write(actor, team)
    pins = bases.check_base_revisions(base_revisions or {})
    if revision and hub.REVISION_SHA.match(revision):
        existing = _imported_version(actor, repo_id, revision)
        if existing is not None:
            return existing, False
    folder = None
    if snapshot_dir:
        folder = _snapshot_folder(actor, snapshot_dir, confine=confine_snapshot)
    top = _read(repo_id, revision, folder=folder, progress=progress)
    existing = _imported_version(actor, repo_id, top.upstream.revision)
    if existing is not None:
        return existing, False
    plan = [top]
    if with_bases:
        plan = bases.plan_bases(
            top,
            pins=pins,
            read=lambda base, pinned: _read(base, pinned, folder=None, progress=progress),
        )
    try:
        with transaction.atomic():
            for lineage in plugins.contributions(UpstreamLineage):
                lineage.lock()
            for planned in plan:
                version = _upstream_record(
                    actor=actor,
                    team=team,
                    planned=planned,
                    caches=hub.dataset_caches(folder if planned is top else None),
                )
                bases.bases_link(actor=actor, team=team, child=version, planned=planned, pins=pins)
    except (Conflict, InvalidInput):
        # A concurrent import of the same revision committed first: answer with its version.
        existing = _imported_version(actor, repo_id, top.upstream.revision)
        if existing is None:
            raise
        return existing, False
    return version, True


def _read(
    repo_id: str, revision: str | None, *, folder: Path | None, progress: ArtefactProgress | None
) -> bases.Planned:
    try:
        upstream = hub.read_snapshot(
            repo_id,
            revision=revision or None,
            snapshot_dir=folder,
            allowed_hosts=list(settings.HUB_ALLOWED_HOSTS),
            progress=progress,
        )
        licence = hub.resolve_licence(upstream.card, repo_id=repo_id)
        relation = hub.infer_relation(
            upstream.card,
            repo_id=repo_id,
            files=[file.path for file in upstream.manifest.files] + upstream.excluded,
            has_adapter_config=upstream.manifest.adapter is not None,
            quantization_method=upstream.quantization_method,
        )
        manifest = manifest_stored(upstream.manifest)
    except hub.HubError as error:
        raise _hub_error(error) from None
    except ArtefactError as error:
        raise artefact_invalid("snapshot_dir" if folder else "repo_id", error) from None
    return bases.Planned(upstream=upstream, licence=licence, relation=relation, manifest=manifest)
