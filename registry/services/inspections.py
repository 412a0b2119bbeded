"""Inspection of a server path: small artefacts inside the request, large ones as a task (an
`ArtefactInspection` the client polls), so no web process spends minutes hashing."""

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from pedigree_client.artefacts import ArtefactError, resolve_inside_roots
from pedigree_client.artefacts.paths import list_files, locate
from registry.audit import audit_record
from registry.errors import ServiceError
from registry.models import ArtefactInspection, InspectionStatus
from registry.outbox import outbox_add
from registry.selectors import artefact_areas_of, upload_expiry_cutoff
from registry.services._common import artefact_invalid
from registry.services.artefacts import artefact_inspect
from registry.types import Actor

INSPECTION_TASK = "registry.tasks.inspect_artefact"


def inspection_stale_before() -> datetime:
    """A running inspection claimed before this lost its worker (it outlasts the task's hard
    time limit): a redelivered task takes it over."""
    return timezone.now() - timedelta(seconds=settings.PEDIGREE_EVALUATION_TIME_LIMIT + 60)


def _size_of(actor: Actor, path: str) -> int:
    """The bytes an inspection of `path` would hash: confined like the inspection itself (the
    actor's areas), and stat-ing nothing outside them; no file is opened."""
    roots = [Path(root) for root in settings.ARTEFACT_ROOTS]
    areas = artefact_areas_of(actor)
    try:
        resolved = resolve_inside_roots(path, roots, areas=areas)
        boundaries = [boundary.resolve() for boundary in areas or roots]
        return sum(
            locate(file, relpath, boundaries)[1]
            for relpath, file in list_files(resolved, exclude=None)
        )
    except ArtefactError as error:
        raise artefact_invalid("artefact_path", error) from None


def artefact_inspection_request(
    *, actor: Actor, path: str
) -> tuple[dict[str, Any] | None, ArtefactInspection | None]:
    """Inspect `path` (see `artefact_inspect`): at once when its files total at most
    `PEDIGREE_INSPECT_INLINE_MAX_BYTES`, returning the manifest; else record an inspection and
    enqueue its task through the outbox, returning the inspection to poll. A path the actor may
    not name is refused before anything is recorded."""
    size = _size_of(actor, path)
    if size <= settings.PEDIGREE_INSPECT_INLINE_MAX_BYTES:
        return artefact_inspect(actor=actor, path=path)[1], None
    with transaction.atomic():
        inspection = ArtefactInspection.objects.create(requested_by=actor, path=path, size=size)
        audit_record(
            actor=actor,
            action="artefact_inspection.create",
            obj=inspection,
            after={"path": path, "size": size},
        )
        outbox_add(task=INSPECTION_TASK, args=[str(inspection.pk)], queue="cpu")
    # In-process (no broker) the task ran after the commit: answer with what it found.
    inspection.refresh_from_db()
    return None, inspection


def artefact_inspection_run(*, inspection_id: uuid.UUID | str) -> str:
    """Run one inspection (its task): claimed with a conditional UPDATE, so a redelivered
    message never hashes twice at once; the requester's areas are checked again as they are now.
    Returns the status it ended in, or "skipped" when it was not claimable."""
    claimed = ArtefactInspection.objects.filter(
        Q(status=InspectionStatus.PENDING)
        | Q(status=InspectionStatus.RUNNING, claimed_at__lt=inspection_stale_before()),
        pk=inspection_id,
    ).update(status=InspectionStatus.RUNNING, claimed_at=timezone.now())
    if not claimed:
        return "skipped"
    inspection = ArtefactInspection.objects.select_related("requested_by").get(pk=inspection_id)
    try:
        _, manifest = artefact_inspect(actor=inspection.requested_by, path=inspection.path)
    except ServiceError as error:
        ArtefactInspection.objects.filter(pk=inspection_id).update(
            status=InspectionStatus.FAILED,
            finished_at=timezone.now(),
            error={
                "status": error.status,
                "code": error.code,
                "message": error.message,
                "fields": error.fields,
            },
        )
        return InspectionStatus.FAILED
    except BaseException:
        # Not the input's fault: recorded so the client stops polling, and raised to be seen.
        ArtefactInspection.objects.filter(pk=inspection_id).update(
            status=InspectionStatus.FAILED,
            finished_at=timezone.now(),
            error={
                "status": 500,
                "code": "server_error",
                "message": "The inspection failed on the server; ask again, or tell the "
                "operators if it keeps failing.",
            },
        )
        raise
    ArtefactInspection.objects.filter(pk=inspection_id).update(
        status=InspectionStatus.DONE, finished_at=timezone.now(), manifest=manifest
    )
    return InspectionStatus.DONE


def inspections_sweep(*, now: datetime | None = None) -> int:
    """Delete inspections older than the uploads' lifetime (`PEDIGREE_UPLOAD_TTL_HOURS`): their
    answers were for the client that asked at the time."""
    deleted, _ = ArtefactInspection.objects.filter(
        created_at__lt=upload_expiry_cutoff(now)
    ).delete()
    return deleted
