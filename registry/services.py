"""Writes to the catalogue. Every write checks permission, validates, and is audited atomically."""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db import models as dj_models
from django.forms.models import model_to_dict
from django.utils import timezone

from pedigree_client.artefacts import (
    CONVERT_HINT,
    PICKLE_SUFFIXES,
    ArtefactError,
    ArtefactManifest,
    ArtefactProgress,
    inspect_artefact,
    resolve_inside_roots,
    weight_parameters,
)
from registry import hub, storage
from registry.audit import audit_record
from registry.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionRefused,
    ServiceError,
    Unavailable,
    invalid_from_django,
)
from registry.gates import DISTRIBUTIONS, USES, involved_user_ids, registered_checks
from registry.models import (
    Approval,
    ApprovalDecision,
    ArtefactUpload,
    CheckWaiver,
    Dataset,
    DatasetVersion,
    EventDelivery,
    GateDecision,
    ModelKind,
    ModelVersion,
    RegisteredModel,
    Stage,
    StagePolicy,
    Team,
    Visibility,
    WebhookEndpoint,
)
from registry.selectors import (
    gate_evaluate,
    is_compliance,
    is_team_member,
    versions_visible_to,
)

MODEL_UPDATABLE = {"task", "description", "visibility", "allow_multiple_production"}
VERSION_UPDATABLE = {
    "description",
    "artefact_uri",
    "licence_declared",
    "risk_tier",
    "intended_use",
    "out_of_scope_uses",
    "known_limitations",
    "uses_sensitive_personal_data",
    "domain",
}
COMPLIANCE_ONLY_FIELDS = {"licence_concluded"}
DATASET_UPDATABLE = {"description", "source", "visibility", "hub_id"}
DATASET_VERSION_UPDATABLE = {
    "licence_declared",
    "uri",
    "row_count",
    "contains_personal_data",
    "sensitive_attributes",
    "known_biases",
    "intended_use",
}


# Licence expressions are validated and normalised to canonical SPDX text on every write by
# validators the licensing app registers from its `ready()` (the registry does not import it).
# Each takes (field, value) and returns the canonical text or raises InvalidInput.
LICENCE_FIELDS = ("licence_declared", "licence_concluded")
LICENCE_EXPRESSION_VALIDATORS: list[Callable[[str, Any], str]] = []


def normalise_licences(values: dict[str, Any]) -> dict[str, Any]:
    for name in LICENCE_FIELDS:
        if name in values:
            for validate in LICENCE_EXPRESSION_VALIDATORS:
                values[name] = validate(name, values[name])
    return values


def snapshot(obj: dj_models.Model) -> dict[str, Any]:
    """The fields of a row as plain data, for audit before/after."""
    return model_to_dict(obj, exclude=["members", "artefact_manifest", "hub_card"])


def require_team_write(actor, team: Team) -> None:
    if not is_team_member(actor, team.pk):
        raise PermissionRefused(
            f"You are not a member of team '{team.slug}', so you cannot write its objects. "
            "Ask a team administrator to add you, or use one of your own teams."
        )


def _save_new(obj: dj_models.Model, *, unique_message: str, unique_field: str) -> None:
    try:
        obj.full_clean()
    except DjangoValidationError as error:
        raise invalid_from_django(error) from None
    try:
        with transaction.atomic():
            obj.save(force_insert=True)
    except IntegrityError as error:
        raise Conflict.for_field(unique_field, unique_message) from error


def _apply_changes(
    obj: dj_models.Model, changes: dict[str, Any], allowed: set[str]
) -> dict[str, Any]:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(
            f"These fields cannot be changed here: {', '.join(unknown)}. "
            f"Changeable fields: {', '.join(sorted(allowed))}.",
            fields={name: ["This field cannot be changed."] for name in unknown},
        )
    before = snapshot(obj)
    for name, value in normalise_licences(dict(changes)).items():
        setattr(obj, name, value)
    try:
        obj.full_clean()
    except DjangoValidationError as error:
        raise invalid_from_django(error) from None
    return before


@transaction.atomic
def team_create(*, actor, slug: str, name: str, description: str = "") -> Team:
    if not (is_compliance(actor) or actor.is_staff):
        raise PermissionRefused("Only compliance staff or administrators can create teams.")
    if Team.objects.filter(slug=slug).exists():
        raise Conflict.for_field("slug", f"A team with slug '{slug}' already exists.")
    team = Team(slug=slug, name=name, description=description)
    _save_new(team, unique_field="slug", unique_message=f"Team '{slug}' already exists.")
    audit_record(actor=actor, action="team.create", obj=team, after=snapshot(team))
    return team


@transaction.atomic
def team_update(*, actor, team: Team, changes: dict[str, Any]) -> Team:
    if not (is_compliance(actor) or actor.is_staff):
        require_team_write(actor, team)
    before = _apply_changes(team, changes, {"name", "description"})
    team.save()
    audit_record(actor=actor, action="team.update", obj=team, before=before, after=snapshot(team))
    return team


def team_members_set_audit(*, actor, team: Team, before: list[str], after: list[str]) -> None:
    """Audit a membership change the admin's many-to-many widget already saved."""
    if not (is_compliance(actor) or actor.is_staff):
        raise PermissionRefused("Only compliance staff or administrators can change team members.")
    audit_record(
        actor=actor,
        action="team.members",
        obj=team,
        before={"members": before},
        after={"members": after},
    )


@transaction.atomic
def team_member_add(*, actor, team: Team, user) -> None:
    if not (is_compliance(actor) or actor.is_staff):
        raise PermissionRefused("Only compliance staff or administrators can change team members.")
    team.members.add(user)
    user.__dict__.pop("_pedigree_team_ids", None)
    audit_record(actor=actor, action="team.member_add", obj=team, after={"user": user.username})


@transaction.atomic
def model_create(
    *,
    actor,
    name: str,
    kind: str,
    team: Team,
    visibility: str = "team",
    task: str = "",
    description: str = "",
    allow_multiple_production: bool = False,
) -> RegisteredModel:
    require_team_write(actor, team)
    if RegisteredModel.objects.filter(name=name).exists():
        raise Conflict.for_field(
            "name", f"A model named '{name}' already exists; register a new version of it instead."
        )
    model = RegisteredModel(
        name=name,
        kind=kind,
        team=team,
        visibility=visibility,
        task=task,
        description=description,
        allow_multiple_production=allow_multiple_production,
        created_by=actor,
    )
    _save_new(model, unique_field="name", unique_message=f"Model '{name}' already exists.")
    audit_record(actor=actor, action="model.create", obj=model, after=snapshot(model))
    return model


@transaction.atomic
def model_update(*, actor, model: RegisteredModel, changes: dict[str, Any]) -> RegisteredModel:
    require_team_write(actor, model.team)
    before = _apply_changes(model, changes, MODEL_UPDATABLE)
    model.save()
    audit_record(
        actor=actor, action="model.update", obj=model, before=before, after=snapshot(model)
    )
    return model


def _refuse_taken_label(model: RegisteredModel, version: str) -> None:
    if ModelVersion.objects.filter(model=model, version=version).exists():
        raise Conflict.for_field(
            "version", f"{model.name} already has a version '{version}'; pick a new label."
        )


@transaction.atomic
def version_create(
    *, actor, model: RegisteredModel, version: str, artefact_digest: str, **attributes: Any
) -> ModelVersion:
    require_team_write(actor, model.team)
    if "licence_concluded" in attributes and not is_compliance(actor):
        raise PermissionRefused.for_field(
            "licence_concluded", "Only compliance staff can set the concluded licence."
        )
    attributes = normalise_licences(attributes)
    _refuse_taken_label(model, version)
    instance = ModelVersion(
        model=model,
        version=version,
        artefact_digest=artefact_digest,
        registered_by=actor,
        **attributes,
    )
    _save_new(
        instance, unique_field="version", unique_message=f"{model.name}@{version} already exists."
    )
    audit_record(actor=actor, action="version.create", obj=instance, after=snapshot(instance))
    return instance


@transaction.atomic
def version_update(*, actor, version: ModelVersion, changes: dict[str, Any]) -> ModelVersion:
    compliance_fields = set(changes) & COMPLIANCE_ONLY_FIELDS
    if compliance_fields and not is_compliance(actor):
        raise PermissionRefused.for_field(
            "licence_concluded", "Only compliance staff can set the concluded licence."
        )
    if set(changes) - COMPLIANCE_ONLY_FIELDS:
        require_team_write(actor, version.model.team)
    before = _apply_changes(version, changes, VERSION_UPDATABLE | COMPLIANCE_ONLY_FIELDS)
    version.save()
    audit_record(
        actor=actor, action="version.update", obj=version, before=before, after=snapshot(version)
    )
    return version


@transaction.atomic
def dataset_create(
    *,
    actor,
    name: str,
    team: Team,
    visibility: str = "team",
    description: str = "",
    source: str = "",
    hub_id: str = "",
) -> Dataset:
    require_team_write(actor, team)
    if Dataset.objects.filter(name=name).exists():
        raise Conflict.for_field("name", f"A dataset named '{name}' already exists.")
    dataset = Dataset(
        name=name,
        team=team,
        visibility=visibility,
        description=description,
        source=source,
        hub_id=hub_id,
        created_by=actor,
    )
    _save_new(dataset, unique_field="name", unique_message=f"Dataset '{name}' already exists.")
    audit_record(actor=actor, action="dataset.create", obj=dataset, after=snapshot(dataset))
    return dataset


@transaction.atomic
def dataset_update(*, actor, dataset: Dataset, changes: dict[str, Any]) -> Dataset:
    require_team_write(actor, dataset.team)
    before = _apply_changes(dataset, changes, DATASET_UPDATABLE)
    dataset.save()
    audit_record(
        actor=actor, action="dataset.update", obj=dataset, before=before, after=snapshot(dataset)
    )
    return dataset


@transaction.atomic
def dataset_version_create(
    *, actor, dataset: Dataset, version: str, sha256: str, size_bytes: int, **attributes: Any
) -> DatasetVersion:
    require_team_write(actor, dataset.team)
    if attributes.get("licence_concluded") and not is_compliance(actor):
        raise PermissionRefused.for_field(
            "licence_concluded", "Only compliance staff can set the concluded licence."
        )
    attributes = normalise_licences(attributes)
    if DatasetVersion.objects.filter(dataset=dataset, version=version).exists():
        raise Conflict.for_field(
            "version", f"{dataset.name} already has a version '{version}'; pick a new label."
        )
    instance = DatasetVersion(
        dataset=dataset,
        version=version,
        sha256=sha256,
        size_bytes=size_bytes,
        registered_by=actor,
        **attributes,
    )
    _save_new(
        instance,
        unique_field="version",
        unique_message=f"{dataset.name}@{version} already exists.",
    )
    audit_record(
        actor=actor, action="dataset_version.create", obj=instance, after=snapshot(instance)
    )
    return instance


@transaction.atomic
def dataset_version_update(
    *, actor, dataset_version: DatasetVersion, changes: dict[str, Any]
) -> DatasetVersion:
    if set(changes) & COMPLIANCE_ONLY_FIELDS and not is_compliance(actor):
        raise PermissionRefused.for_field(
            "licence_concluded", "Only compliance staff can set the concluded licence."
        )
    if set(changes) - COMPLIANCE_ONLY_FIELDS:
        require_team_write(actor, dataset_version.dataset.team)
    before = _apply_changes(
        dataset_version, changes, DATASET_VERSION_UPDATABLE | COMPLIANCE_ONLY_FIELDS
    )
    dataset_version.save()
    audit_record(
        actor=actor,
        action="dataset_version.update",
        obj=dataset_version,
        before=before,
        after=snapshot(dataset_version),
    )
    return dataset_version


# --- Artefacts: inspection, uploads, registration from files, upstream import -----------------

UPLOADS_FOLDER = "uploads"
# Read from the files when there are files, so a caller cannot state them as well.
INSPECTED_FIELDS = {"artefact_size", "parameter_count", "artefact_manifest", "artefact_uri"}
_HUB_ERROR_STATUS = {
    "invalid": InvalidInput,
    "not_found": NotFound,
    "forbidden": PermissionRefused,
    "unavailable": Unavailable,
}
_HUB_ERROR_FIELDS = {
    "hub_revision_invalid": "revision",
    "hub_revision_not_found": "revision",
    "revision_required": "revision",
    "snapshot_revision_mismatch": "revision",
    "snapshot_repo_mismatch": "snapshot_dir",
    "snapshot_mixed_revisions": "snapshot_dir",
}


def _artefact_invalid(field: str, error: ArtefactError) -> InvalidInput:
    return InvalidInput.for_field(field, error.message, code=error.code)


def artefact_inspect(
    *, path: str, progress: ArtefactProgress | None = None
) -> tuple[Path, ArtefactManifest]:
    """Resolve a client's path inside the artefact roots and inspect what is there.

    Writes nothing, so engineers can check an artefact before registering it.
    """
    # A path a client names is a file on this server by nature, so it is read in place and not
    # through the artefacts storage, which holds uploads.
    roots = [Path(root) for root in settings.ARTEFACT_ROOTS]
    try:
        resolved = resolve_inside_roots(path, roots)
        return resolved, inspect_artefact(resolved, roots=roots, progress=progress)
    except ArtefactError as error:
        raise _artefact_invalid("artefact_path", error) from None


def artefact_upload_name_check(name: str) -> PurePosixPath:
    """A file name sent in an upload, as a safe path relative to the upload's folder."""
    parts = name.split("/")
    problem = None
    if not name or len(name) > 1024 or any(len(part) > 255 for part in parts):
        problem = "must be 1 to 1024 characters, each folder or file name at most 255"
    elif any(ord(char) < 32 or char == "\x7f" for char in name) or "\\" in name:
        problem = "holds control characters or a backslash"
    elif name.startswith("/"):
        problem = "is absolute"
    elif any(part in ("", ".", "..") for part in parts):
        problem = "has an empty, '.' or '..' part"
    elif any(part.startswith(".") for part in parts):
        problem = "is hidden (starts with '.'); hidden files are not part of an artefact"
    if problem:
        raise InvalidInput.for_field(
            "artefact_upload",
            f"The upload name {name[:100]!r} {problem}; name each file by its path relative to "
            "the artefact folder, like 'model.safetensors' or '1_Pooling/config.json'.",
            code="invalid_file_name",
        )
    relpath = PurePosixPath(name)
    if relpath.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidInput.for_field(
            "artefact_upload",
            f"{name} is a pickle-based file ({relpath.suffix}), and loading pickle can run "
            f"arbitrary code, so it is refused: {CONVERT_HINT}.",
            code="pickle_refused",
        )
    return relpath


def _upload_store_path(upload_id: uuid.UUID) -> str:
    return f"{UPLOADS_FOLDER}/{upload_id}"


def artefact_upload_start() -> tuple[uuid.UUID, Path]:
    """A new, empty local folder to receive the files of one upload (see registry.storage)."""
    upload_id = uuid.uuid4()
    folder = storage.receiving_folder(_upload_store_path(upload_id))
    folder.mkdir(parents=True)
    return upload_id, folder


def artefact_upload_discard(upload_id: uuid.UUID) -> None:
    storage.discard(_upload_store_path(upload_id))


def artefact_upload_finish(
    *, actor, upload_id: uuid.UUID, progress: ArtefactProgress | None = None
) -> ArtefactUpload:
    """Inspect the files received for an upload, save them in the artefact storage and record
    them.

    On any failure the files are deleted: nothing half-uploaded stays behind.
    """
    store_path = _upload_store_path(upload_id)
    try:
        manifest = inspect_artefact(storage.receiving_folder(store_path), progress=progress)
        storage.store_received(store_path, [file.path for file in manifest.files])
        with transaction.atomic():
            upload = ArtefactUpload(
                id=upload_id,
                created_by=actor,
                store_path=store_path,
                manifest=manifest.to_dict(),
                digest=manifest.digest,
                size=manifest.total_size,
            )
            upload.save(force_insert=True)
            audit_record(
                actor=actor,
                action="artefact_upload.create",
                obj=upload,
                after={
                    "digest": manifest.digest,
                    "size": manifest.total_size,
                    "format": manifest.format,
                    "files": len(manifest.files),
                },
            )
    except ArtefactError as error:
        artefact_upload_discard(upload_id)
        raise _artefact_invalid("artefact_upload", error) from None
    except BaseException:
        artefact_upload_discard(upload_id)
        raise
    return upload


def _own_upload(actor, ref: "ArtefactUpload | uuid.UUID | str") -> ArtefactUpload:
    if isinstance(ref, ArtefactUpload):
        ref = ref.pk
    try:
        upload_id = uuid.UUID(str(ref))
    except ValueError:
        upload_id = None
    upload = (
        ArtefactUpload.objects.filter(pk=upload_id, created_by=actor).first() if upload_id else None
    )
    if upload is None:
        raise InvalidInput.for_field(
            "artefact_upload",
            f"You have no upload {str(ref)[:64]!r}; upload the files first "
            "(`pedigree artefacts upload PATH` or POST /api/v1/artefacts/uploads/) and use the "
            "id it returns.",
            code="upload_not_found",
        )
    return upload


def _inspected_fields(manifest: dict[str, Any], *, uri: str) -> dict[str, Any]:
    return {
        "artefact_digest": manifest["digest"],
        "artefact_size": manifest["total_size"],
        "parameter_count": weight_parameters(manifest["parameters_by_dtype"]),
        "artefact_manifest": manifest,
        "artefact_uri": uri,
    }


def version_register(
    *,
    actor,
    model: RegisteredModel,
    version: str,
    artefact_path: str | None = None,
    artefact_upload: "ArtefactUpload | uuid.UUID | str | None" = None,
    artefact_digest: str | None = None,
    progress: ArtefactProgress | None = None,
    **attributes: Any,
) -> ModelVersion:
    """Register a version from its files: a path inside the artefact roots or one of the actor's
    uploads, inspected for digests and parameter counts. `artefact_digest` alone records weights
    Pedigree does not hold (its manifest stays empty).

    Files are inspected before the transaction opens, so hashing holds no database locks; the
    version, the upload's consumption and their audit entries are then written atomically.
    """
    sources = {
        "artefact_path": artefact_path,
        "artefact_upload": artefact_upload,
        "artefact_digest": artefact_digest,
    }
    given = [name for name, value in sources.items() if value not in (None, "")]
    if len(given) != 1:
        message = (
            "Give exactly one artefact source: artefact_path (a path inside the artefact roots), "
            "artefact_upload (an upload id) or artefact_digest (for weights Pedigree does not "
            "hold)."
        )
        raise InvalidInput(message, fields={name: [message] for name in given or sources})
    from_files = artefact_digest in (None, "")
    stated = sorted(attributes.keys() & (INSPECTED_FIELDS if from_files else {"artefact_manifest"}))
    if stated:
        raise InvalidInput(
            f"{', '.join(stated)} come from inspecting the files; leave them out.",
            fields={name: ["Set by inspection."] for name in stated},
        )
    require_team_write(actor, model.team)
    _refuse_taken_label(model, version)
    upload = None
    if artefact_path not in (None, ""):
        resolved, manifest = artefact_inspect(path=artefact_path, progress=progress)
        fields = _inspected_fields(manifest.to_dict(), uri=resolved.as_uri())
    elif artefact_upload not in (None, ""):
        upload = _own_upload(actor, artefact_upload)
        fields = _inspected_fields(upload.manifest, uri=storage.artefact_uri(upload.store_path))
    else:
        fields = {"artefact_digest": artefact_digest, "artefact_manifest": {}}
    with transaction.atomic():
        if upload is not None:
            upload = ArtefactUpload.objects.select_for_update().get(pk=upload.pk)
            if upload.consumed_by_id is not None:
                raise Conflict.for_field(
                    "artefact_upload",
                    f"Upload {upload.pk} already holds version {upload.consumed_by}; upload the "
                    "files again to register another version.",
                    code="upload_consumed",
                )
        instance = version_create(actor=actor, model=model, version=version, **fields, **attributes)
        if upload is not None:
            upload.consumed_by = instance
            upload.save(update_fields=["consumed_by"])
            audit_record(
                actor=actor,
                action="artefact_upload.consume",
                obj=upload,
                after={"version": str(instance), "digest": upload.digest},
            )
    return instance


def _hub_error(error: hub.HubError) -> ServiceError:
    field = _HUB_ERROR_FIELDS.get(error.code, "repo_id")
    return _HUB_ERROR_STATUS[error.kind].for_field(field, error.message, code=error.code)


def _imported_version(actor, repo_id: str, revision: str) -> ModelVersion | None:
    found = (
        ModelVersion.objects.filter(hub_repo_id=repo_id, hub_revision=revision)
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


def _snapshot_folder(raw: str, *, confine: bool) -> Path:
    try:
        if confine:
            roots = [*(Path(root) for root in settings.ARTEFACT_ROOTS), hub.cache_dir()]
            folder = resolve_inside_roots(raw, roots)
        else:
            folder = Path(raw).expanduser().resolve(strict=True)
    except ArtefactError as error:
        raise _artefact_invalid("snapshot_dir", error) from None
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


def _hub_datasets(*, actor, team: Team, hub_ids: list[str]) -> list[Dataset]:
    """The dataset record of each Hub dataset id, created (visible org-wide) where missing."""
    existing = list(
        Dataset.objects.filter(dj_models.Q(hub_id__in=hub_ids) | dj_models.Q(name__in=hub_ids))
    )
    by_hub_id = {dataset.hub_id: dataset for dataset in existing if dataset.hub_id}
    names = {dataset.name: dataset for dataset in existing}
    datasets = []
    for hub_id in hub_ids:
        dataset = by_hub_id.get(hub_id)
        if dataset is None and hub_id in names:
            raise Conflict.for_field(
                "datasets",
                f"A dataset named {hub_id} exists but is not linked to the Hub dataset {hub_id}; "
                "set its hub_id (or rename it), then import again.",
            )
        if dataset is None:
            dataset = dataset_create(
                actor=actor,
                name=hub_id,
                team=team,
                visibility=Visibility.INTERNAL,
                source=hub.dataset_url(hub_id),
                hub_id=hub_id,
            )
        datasets.append(dataset)
    return datasets


def _upstream_record(
    *, actor, team: Team, upstream: hub.HubSnapshot, licence: hub.LicenceMapping
) -> ModelVersion:
    card = upstream.card
    model = RegisteredModel.objects.filter(name=upstream.repo_id).select_related("team").first()
    if model is None:
        model = model_create(
            actor=actor,
            name=upstream.repo_id,
            kind=ModelKind.UPSTREAM,
            team=team,
            visibility=Visibility.INTERNAL,
            task=(card.pipeline_tag or "")[:64],
            description=f"Imported from {hub.repo_url(upstream.repo_id)}",
        )
    elif model.kind != ModelKind.UPSTREAM:
        raise Conflict.for_field(
            "repo_id",
            f"{model.name} is registered as a {model.kind} model, but upstream models are named "
            "by their Hub repo id; rename that model first.",
        )
    datasets = _hub_datasets(actor=actor, team=team, hub_ids=card.datasets)
    version = version_create(
        actor=actor,
        model=model,
        version=upstream.revision[:12],
        artefact_digest=upstream.manifest.digest,
        artefact_size=upstream.manifest.total_size,
        parameter_count=weight_parameters(upstream.manifest.parameters_by_dtype),
        artefact_manifest=upstream.manifest.to_dict(),
        artefact_uri=upstream.url,
        licence_declared=licence.expression,
        hub_repo_id=upstream.repo_id,
        hub_revision=upstream.revision,
        hub_card={
            "content": card.content,
            "metadata": card.metadata,
            "license": card.license,
            "license_name": card.license_name,
            "license_link": card.license_link,
            "licence": licence.to_dict(),
            "base_models": card.base_models,
            "base_model_relation": card.base_model_relation,
            "datasets": card.datasets,
            "pipeline_tag": card.pipeline_tag,
            "library_name": card.library_name,
            "tags": card.tags,
            "gated": upstream.gated,
            "excluded_files": upstream.excluded,
            "source": {"kind": upstream.source, "location": upstream.location},
        },
    )
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
            "base_models": card.base_models,
            "excluded_files": upstream.excluded,
        },
    )
    return version


def upstream_import(
    *,
    actor,
    team: Team,
    repo_id: str,
    revision: str | None = None,
    snapshot_dir: str | None = None,
    confine_snapshot: bool = True,
    progress: ArtefactProgress | None = None,
) -> tuple[ModelVersion, bool]:
    """Record one revision of a Hugging Face Hub model as an upstream version; returns it and
    whether it was created.

    The model is named by the repo id (kind upstream, visible org-wide), the version by the
    first 12 characters of the commit SHA, which is pinned in full in `hub_revision`. The card's
    licence, datasets (created as dataset records where missing) and base models are recorded,
    and the raw card is kept in `hub_card`. Importing a repo+revision again returns the existing
    version. `snapshot_dir` must lie inside the artefact roots or the local HF cache unless
    `confine_snapshot` is False (server operators, `manage.py import_hf`).
    """
    require_team_write(actor, team)
    if revision and hub.REVISION_SHA.match(revision):
        existing = _imported_version(actor, repo_id, revision)
        if existing is not None:
            return existing, False
    folder = None
    if snapshot_dir not in (None, ""):
        folder = _snapshot_folder(snapshot_dir, confine=confine_snapshot)
    try:
        upstream = hub.read_snapshot(
            repo_id,
            revision=revision or None,
            snapshot_dir=folder,
            allowed_hosts=list(settings.HUB_ALLOWED_HOSTS),
            progress=progress,
        )
        licence = hub.resolve_licence(upstream.card, repo_id=repo_id)
    except hub.HubError as error:
        raise _hub_error(error) from None
    except ArtefactError as error:
        raise _artefact_invalid("snapshot_dir" if folder else "repo_id", error) from None
    existing = _imported_version(actor, repo_id, upstream.revision)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            version = _upstream_record(actor=actor, team=team, upstream=upstream, licence=licence)
    except (Conflict, InvalidInput):
        # A concurrent import of the same revision committed first: answer with its version.
        existing = _imported_version(actor, repo_id, upstream.revision)
        if existing is None:
            raise
        return existing, False
    return version, True


# --- Governance: approvals, waivers, promotion, stage policy, events ---------------------------


def _require_compliance(actor, what: str) -> None:
    if not is_compliance(actor):
        raise PermissionRefused(f"Only compliance staff can {what}.")


@transaction.atomic
def approval_record(
    *,
    actor,
    version: ModelVersion,
    stage: str,
    decision: str = "approve",
    comment: str = "",
    valid_days: int | None = None,
) -> Approval:
    _require_compliance(actor, "approve or reject versions")
    if actor.pk in involved_user_ids(version):
        raise PermissionRefused(
            f"{actor.username} registered or produced {version}, so cannot approve it "
            "(separation of duties); another compliance officer must review it."
        )
    if stage not in Stage.values or stage == Stage.DEVELOPMENT:
        raise InvalidInput.for_field("stage", "Approve for one of: staging, production.")
    if decision not in ApprovalDecision.values:
        raise InvalidInput.for_field("decision", "Use 'approve' or 'reject'.")
    if decision == ApprovalDecision.REJECT and not comment.strip():
        raise InvalidInput.for_field("comment", "Say why the version is rejected.")
    days = valid_days if valid_days is not None else settings.PEDIGREE_APPROVAL_VALID_DAYS
    if not 1 <= days <= settings.PEDIGREE_APPROVAL_VALID_DAYS:
        raise InvalidInput.for_field(
            "valid_days", f"Approvals last 1 to {settings.PEDIGREE_APPROVAL_VALID_DAYS} days."
        )
    now = timezone.now()
    approval = Approval.objects.create(
        version=version,
        stage=stage,
        decision=decision,
        comment=comment,
        artefact_digest=version.artefact_digest,
        approver=actor,
        expires_at=now + timedelta(days=days),
    )
    audit_record(
        actor=actor,
        action=f"approval.{decision}",
        obj=version,
        after={
            "approval": approval.pk,
            "stage": stage,
            "digest": version.artefact_digest,
            "expires_at": approval.expires_at,
            "comment": comment,
        },
    )
    event_publish(
        kind=f"version.{'approved' if decision == 'approve' else 'rejected'}",
        payload={"version": str(version), "stage": stage, "by": actor.username, "comment": comment},
    )
    return approval


@transaction.atomic
def check_waiver_grant(
    *, actor, version: ModelVersion, check_name: str, reason: str, expires_at: datetime
) -> CheckWaiver:
    _require_compliance(actor, "waive gate checks")
    if not reason.strip():
        raise InvalidInput.for_field("reason", "A waiver needs a reason compliance can stand by.")
    now = timezone.now()
    if expires_at <= now:
        raise InvalidInput.for_field("expires_at", "The expiry must be in the future.")
    if expires_at > now + timedelta(days=settings.PEDIGREE_WAIVER_MAX_DAYS):
        raise InvalidInput.for_field(
            "expires_at", f"Waivers last at most {settings.PEDIGREE_WAIVER_MAX_DAYS} days."
        )
    if check_name in ("transition", "policy"):
        raise InvalidInput.for_field(
            "check", f"The '{check_name}' check cannot be waived; change the stage policy instead."
        )
    if check_name not in registered_checks():
        raise InvalidInput.for_field(
            "check",
            f"Unknown check '{check_name}'; one of: {', '.join(sorted(registered_checks()))}.",
        )
    waiver = CheckWaiver.objects.create(
        version=version,
        check_name=check_name,
        reason=reason,
        granted_by=actor,
        artefact_digest=version.artefact_digest,
        expires_at=expires_at,
    )
    audit_record(
        actor=actor,
        action="waiver.grant",
        obj=version,
        after={
            "waiver": waiver.pk,
            "check": check_name,
            "reason": reason,
            "expires_at": expires_at,
        },
    )
    return waiver


@transaction.atomic
def check_waiver_revoke(*, actor, waiver: CheckWaiver) -> CheckWaiver:
    _require_compliance(actor, "revoke waivers")
    if waiver.revoked_at is None:
        waiver.revoked_at = timezone.now()
        waiver.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="waiver.revoke",
            obj=waiver.version,
            after={"waiver": waiver.pk, "check": waiver.check_name},
        )
    return waiver


@transaction.atomic
def version_promote(
    *,
    actor,
    version: ModelVersion,
    stage: str,
    justification: str = "",
    use: str = "commercial",
    distribution: str = "hosted",
    replace_production: bool = False,
) -> GateDecision:
    """Run every gate check with the version row locked; move the stage only if all pass.

    The decision is recorded either way (and audited); the caller tells a refusal by
    `decision.passed`.
    """
    if stage not in Stage.values:
        raise InvalidInput.for_field("stage", f"Unknown stage; one of: {', '.join(Stage.values)}.")
    if use not in USES:
        raise InvalidInput.for_field("use", f"Unknown use; one of: {', '.join(USES)}.")
    if distribution not in DISTRIBUTIONS:
        raise InvalidInput.for_field(
            "distribution", f"Unknown distribution; one of: {', '.join(DISTRIBUTIONS)}."
        )
    # Lock the model row first: concurrent promotions of its versions queue up here.
    RegisteredModel.objects.select_for_update().get(pk=version.model_id)
    version = (
        ModelVersion.objects.select_for_update(of=("self",))
        .select_related("model", "model__team", "registered_by")
        .get(pk=version.pk)
    )
    if not (is_compliance(actor) or is_team_member(actor, version.model.team_id)):
        raise PermissionRefused(
            f"Only members of team '{version.model.team.slug}' or compliance staff can promote "
            f"{version}."
        )
    evaluation = gate_evaluate(
        version=version, stage=stage, use=use, distribution=distribution, actor=actor
    )
    results = evaluation.results
    passed = evaluation.passed
    exclusive = not version.model.allow_multiple_production
    displaced = []
    if stage == Stage.PRODUCTION and exclusive:
        displaced = list(
            ModelVersion.objects.filter(model_id=version.model_id, stage=Stage.PRODUCTION).exclude(
                pk=version.pk
            )
        )
        if displaced and not replace_production:
            passed = False
            results = [
                *results,
                {
                    "check": "single_production",
                    "passed": False,
                    "required": True,
                    "waiver": None,
                    "evidence": {"in_production": [str(v) for v in displaced]},
                    "reasons": [
                        f"{displaced[0]} is already in production and the model allows one "
                        "production version; archive it first or pass replace_production"
                    ],
                },
            ]
    decision = GateDecision.objects.create(
        version=version,
        from_stage=version.stage,
        to_stage=stage,
        use=use,
        distribution=distribution,
        passed=passed,
        results=results,
        artefact_digest=version.artefact_digest,
        policy=evaluation.policy,
        justification=justification,
        actor=actor,
    )
    if passed:
        for old in displaced:
            old.stage = Stage.ARCHIVED
            old.save(update_fields=["stage", "updated_at"])
            audit_record(
                actor=actor,
                action="version.archive",
                obj=old,
                before={"stage": Stage.PRODUCTION},
                after={"stage": Stage.ARCHIVED, "replaced_by": str(version)},
            )
        before = {"stage": version.stage}
        version.stage = stage
        version.production_exclusive = exclusive
        version.save(update_fields=["stage", "production_exclusive", "updated_at"])
        audit_record(
            actor=actor,
            action="version.promote",
            obj=version,
            before=before,
            after={"stage": stage, "decision": decision.pk, "justification": justification},
        )
    else:
        audit_record(
            actor=actor,
            action="version.promotion_refused",
            obj=version,
            after={
                "stage": stage,
                "decision": decision.pk,
                "failed": [
                    r["check"]
                    for r in results
                    if r["required"] and not r["passed"] and not r["waiver"]
                ],
            },
        )
    event_publish(
        kind="version.promoted" if passed else "version.promotion_refused",
        payload={
            "version": str(version),
            "stage": stage,
            "decision": decision.pk,
            "passed": passed,
            "by": actor.username,
            "failed_checks": [
                r["check"] for r in results if r["required"] and not r["passed"] and not r["waiver"]
            ],
        },
    )
    return decision


@transaction.atomic
def stage_policy_update(*, actor, policy: StagePolicy, changes: dict[str, Any]) -> StagePolicy:
    _require_compliance(actor, "change stage policies")
    unknown_checks = sorted(set(changes.get("required_checks", [])) - set(registered_checks()))
    if unknown_checks:
        raise InvalidInput.for_field(
            "required_checks",
            f"Unknown check(s): {', '.join(unknown_checks)}; "
            f"known: {', '.join(sorted(registered_checks()))}.",
        )
    before = _apply_changes(policy, changes, {"allowed", "required_checks", "approvals_required"})
    policy.revision += 1
    policy.updated_by = actor
    policy.save()
    audit_record(
        actor=actor, action="policy.update", obj=policy, before=before, after=snapshot(policy)
    )
    return policy


def event_publish(*, kind: str, payload: dict[str, Any]) -> list[EventDelivery]:
    """Queue a signed webhook delivery per interested endpoint, sent after the commit."""
    from registry.tasks import deliver_event

    deliveries = [
        EventDelivery.objects.create(
            endpoint=endpoint,
            event=kind,
            payload={"event": kind, "at": timezone.now().isoformat(), "data": payload},
        )
        for endpoint in WebhookEndpoint.objects.filter(active=True)
        if not endpoint.events or kind in endpoint.events
    ]
    for delivery in deliveries:
        transaction.on_commit(lambda pk=delivery.pk: deliver_event.delay(pk))
    return deliveries
