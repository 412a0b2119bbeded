"""Artefacts: inspection of files inside the artefact roots, uploads, and registering a version
from its files."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.db import transaction

from pedigree_client.artefacts import (
    CONVERT_HINT,
    PICKLE_SUFFIXES,
    ArtefactError,
    ArtefactProgress,
    inspect_artefact,
    resolve_inside_roots,
    weight_parameters,
)
from registry import storage
from registry.audit import audit_record
from registry.errors import Conflict, FieldErrors, InvalidInput
from registry.models import ArtefactUpload, ModelVersion, RegisteredModel
from registry.selectors import artefact_areas_of, reusable_upload, upload_expiry_cutoff
from registry.services._common import (
    LICENCE_FIELDS,
    artefact_invalid,
    normalise_licences,
    refuse_promotion_fields,
    refuse_taken_label,
    require_team_write,
    validate_fields,
)
from registry.services.catalogue import version_insert
from registry.services.manifests import manifest_stored
from registry.types import Actor

UPLOADS_FOLDER = "uploads"
# Set only by inspecting files (or importing from the Hub), never stated by a caller: not even for
# weights Pedigree does not hold, which are known by their digest alone.
SERVER_OWNED_FIELDS = {
    "artefact_size",
    "parameter_count",
    "artefact_manifest",
    "artefact_uri",
    "hub_repo_id",
    "hub_revision",
}


def artefact_inspect(
    *, actor: Actor, path: str, progress: ArtefactProgress | None = None
) -> tuple[Path, dict[str, Any]]:
    """Resolve a client's path inside the actor's areas of the artefact roots (anywhere in them
    for compliance staff) and inspect what is there; a path elsewhere is not found. Returns the
    resolved path and the manifest as stored (bounded, see `manifest_stored`).

    Writes nothing, so engineers can check an artefact before registering it.
    """
    # A path a client names is a file on this server by nature, so it is read in place and not
    # through the artefacts storage, which holds uploads.
    roots = [Path(root) for root in settings.ARTEFACT_ROOTS]
    areas = artefact_areas_of(actor)
    try:
        resolved = resolve_inside_roots(path, roots, areas=areas)
        # Every file's symlinks must stay inside the same areas.
        manifest = inspect_artefact(resolved, roots=areas or roots, progress=progress)
        return resolved, manifest_stored(manifest)
    except ArtefactError as error:
        raise artefact_invalid("artefact_path", error) from None


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
    *, actor: Actor, upload_id: uuid.UUID, progress: ArtefactProgress | None = None
) -> tuple[ArtefactUpload, bool]:
    """Inspect the files received for an upload, save them in the artefact storage and record
    them; returns the upload and whether it is new.

    The same files sent again while the actor's earlier upload of them is unexpired and
    unregistered give that upload back, and are not stored twice. On any failure the files are
    deleted: nothing half-uploaded stays behind.
    """
    store_path = _upload_store_path(upload_id)
    try:
        manifest = inspect_artefact(storage.receiving_folder(store_path), progress=progress)
        stored = manifest_stored(manifest)
        existing = reusable_upload(actor, manifest.digest)
        if existing is not None:
            artefact_upload_discard(upload_id)
            return existing, False
        storage.store_received(store_path, [file.path for file in manifest.files])
        with transaction.atomic():
            upload = ArtefactUpload(
                id=upload_id,
                created_by=actor,
                store_path=store_path,
                manifest=stored,
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
        raise artefact_invalid("artefact_upload", error) from None
    except BaseException:
        artefact_upload_discard(upload_id)
        raise
    return upload, True


def uploads_sweep(*, now: datetime | None = None) -> list[uuid.UUID]:
    """Delete the uploads that no version took within `PEDIGREE_UPLOAD_TTL_HOURS`: each row with
    its audit entry, then its files through the artefacts storage. Returns their ids."""
    expired = list(
        ArtefactUpload.objects.filter(
            consumed_by__isnull=True, created_at__lt=upload_expiry_cutoff(now)
        ).values_list("pk", flat=True)
    )
    swept: list[uuid.UUID] = []
    for upload_id in expired:
        with transaction.atomic():
            # Locked and checked again: a registration may have taken it meanwhile.
            upload = (
                ArtefactUpload.objects.select_for_update()
                .filter(pk=upload_id, consumed_by__isnull=True)
                .first()
            )
            if upload is None:
                continue
            audit_record(
                actor=None,
                action="artefact_upload.expire",
                obj=upload,
                after={"digest": upload.digest, "size": upload.size},
            )
            upload.delete()
        # After the commit, so that no row ever names files that are gone.
        storage.discard(upload.store_path)
        swept.append(upload_id)
    return swept


def _own_upload(actor: Actor, ref: "ArtefactUpload | uuid.UUID | str") -> ArtefactUpload:
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


@dataclass(frozen=True)
class VersionDraft:
    """A version checked and ready to write: what its files said, and its attributes."""

    version: str
    fields: dict[str, Any]
    upload: ArtefactUpload | None


def _artefact_fields(
    actor: Actor,
    *,
    artefact_path: str | None,
    artefact_upload: "ArtefactUpload | uuid.UUID | str | None",
    artefact_digest: str | None,
    attributes: dict[str, Any],
    progress: ArtefactProgress | None,
) -> tuple[dict[str, Any], ArtefactUpload | None]:
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
    stated = sorted(attributes.keys() & SERVER_OWNED_FIELDS)
    if stated:
        raise InvalidInput(
            f"{', '.join(stated)} come from inspecting the files or importing from the Hub; "
            "leave them out.",
            fields={name: ["Set by the server."] for name in stated},
        )
    if artefact_path:
        resolved, manifest = artefact_inspect(actor=actor, path=artefact_path, progress=progress)
        return _inspected_fields(manifest, uri=resolved.as_uri()), None
    if artefact_upload:
        upload = _own_upload(actor, artefact_upload)
        uri = storage.artefact_uri(upload.store_path)
        return _inspected_fields(upload.manifest, uri=uri), upload
    return {"artefact_digest": artefact_digest, "artefact_manifest": {}}, None


def version_draft_prepare(
    *,
    actor: Actor,
    model: RegisteredModel | None,
    version: str,
    errors: FieldErrors,
    artefact_path: str | None = None,
    artefact_upload: "ArtefactUpload | uuid.UUID | str | None" = None,
    artefact_digest: str | None = None,
    progress: ArtefactProgress | None = None,
    **attributes: Any,
) -> VersionDraft:
    """Check a version to register from its files, writing nothing: the artefact source (a path
    inside the artefact roots, inspected; one of the actor's uploads; or `artefact_digest` alone
    for weights Pedigree does not hold, whose manifest stays empty), the licences and every
    field. Each problem goes to `errors`; `model` is None when the caller creates it later."""
    errors.collect(lambda: refuse_promotion_fields(attributes))
    fields = errors.collect(
        lambda: _artefact_fields(
            actor,
            artefact_path=artefact_path,
            artefact_upload=artefact_upload,
            artefact_digest=artefact_digest,
            attributes=attributes,
            progress=progress,
        )
    )
    inspected, upload = fields or ({}, None)
    normalised = errors.collect(lambda: normalise_licences(dict(attributes)))
    # What failed above is reported already; every other field is checked as the row will be.
    skipped = {"model", "registered_by", *(() if fields else ("artefact_digest",))}
    if normalised is None:
        skipped.update(LICENCE_FIELDS)
    candidate = ModelVersion(
        version=version,
        **({"model": model} if model is not None else {}),
        **{"artefact_digest": "", **(normalised or attributes), **inspected},
    )
    errors.collect(lambda: validate_fields(candidate, exclude=skipped))
    return VersionDraft(version=version, fields={**inspected, **(normalised or {})}, upload=upload)


def version_draft_save(
    *, actor: Actor, model: RegisteredModel, draft: VersionDraft
) -> ModelVersion:
    """Write a checked version, consuming its upload, with their audit entries, in the caller's
    transaction (so that they are written together)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("version_draft_save must be called inside a transaction")
    upload = None
    if draft.upload is not None:
        upload = ArtefactUpload.objects.select_for_update().filter(pk=draft.upload.pk).first()
        if upload is None:
            raise InvalidInput.for_field(
                "artefact_upload",
                f"Upload {draft.upload.pk} expired meanwhile; upload the files again.",
                code="upload_not_found",
            )
        if upload.consumed_by_id is not None:
            raise Conflict.for_field(
                "artefact_upload",
                f"Upload {upload.pk} already holds version {upload.consumed_by}; upload the "
                "files again to register another version.",
                code="upload_consumed",
            )
    instance = version_insert(actor=actor, model=model, version=draft.version, **draft.fields)
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


def version_register(
    *,
    actor: Actor,
    model: RegisteredModel,
    version: str,
    artefact_path: str | None = None,
    artefact_upload: "ArtefactUpload | uuid.UUID | str | None" = None,
    artefact_digest: str | None = None,
    progress: ArtefactProgress | None = None,
    **attributes: Any,
) -> ModelVersion:
    """Register a version from its files (see `version_draft_prepare`): every problem with the
    input is reported at once.

    Files are inspected before the transaction opens, so hashing holds no database locks; the
    version, the upload's consumption and their audit entries are then written atomically.
    """
    require_team_write(actor, model.team)
    refuse_taken_label(model, version)
    errors = FieldErrors()
    draft = version_draft_prepare(
        actor=actor,
        model=model,
        version=version,
        errors=errors,
        artefact_path=artefact_path,
        artefact_upload=artefact_upload,
        artefact_digest=artefact_digest,
        progress=progress,
        **attributes,
    )
    errors.raise_if_any()
    with transaction.atomic():
        return version_draft_save(actor=actor, model=model, draft=draft)
