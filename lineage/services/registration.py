"""One-call registration: a version with its parents, training run and datasets, atomically."""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from lineage.services.edges import ParentSpec, add_parents, check_parent_set, resolve_parents
from lineage.services.shared import lineage_write_lock
from lineage.services.training import (
    DatasetUse,
    record_run,
    resolve_dataset_version,
    resolve_run_by,
    validate_run_input,
)
from registry import services as registry_services
from registry.errors import InvalidInput
from registry.models import ArtefactUpload, ModelKind, ModelVersion, RegisteredModel
from registry.selectors import models_visible_to, teams_visible_to
from registry.types import Actor


def _model_for_registration(
    actor: Actor, name: str, create_model: Mapping[str, Any] | None, has_parents: bool
) -> RegisteredModel:
    model = models_visible_to(actor).filter(name=name).first()
    if model is not None:
        return model
    if create_model is None:
        raise InvalidInput.for_field(
            "model",
            f'No model \'{name}\' that you can see. Pass create_model: {{"team": "<slug>"}} '
            "to create it in one of your teams as part of this registration.",
        )
    options = dict(create_model)
    team_slug = options.pop("team", None)
    team = teams_visible_to(actor).filter(slug=team_slug).first() if team_slug else None
    if team is None:
        raise InvalidInput.for_field(
            "create_model.team", f"No team '{team_slug}' that you belong to; name one of yours."
        )
    options.setdefault("kind", ModelKind.DERIVED if has_parents else ModelKind.UPSTREAM)
    return registry_services.model_create(actor=actor, name=name, team=team, **options)


@transaction.atomic
def registration_create(
    *,
    actor: Actor,
    model: str,
    version: str,
    parents: Sequence[ParentSpec] = (),
    training_run: Mapping[str, Any] | None = None,
    create_model: Mapping[str, Any] | None = None,
    artefact_path: str | None = None,
    artefact_upload: ArtefactUpload | uuid.UUID | str | None = None,
    artefact_digest: str | None = None,
    **attributes: Any,
) -> ModelVersion:
    """Register a version with its parents, training run and datasets, atomically.

    `model` is a model name; when it does not exist yet and `create_model` is given
    (`{"team": slug, "kind"?, "visibility"?, "task"?, "description"?}`) it is created too.
    `training_run` holds the keyword arguments of `training_run_record` (datasets as
    `DatasetUse`s). The artefact and `attributes` (licence, risk metadata…) go to
    `registry.services.version_register`, which inspects the files.
    Anything wrong raises before the transaction commits, so nothing is half-written.

    The lineage lock is taken before the version is created (lock order: lineage, then audit),
    so files named by `artefact_path` are hashed while holding it; clients should upload first
    (`artefact_upload`, hashed at upload time), as `pedigree register` does.
    """
    relations = [spec.relation for spec in parents]
    check_parent_set(relations, "parents")
    run = dict(training_run or {})
    run_datasets: Sequence[DatasetUse] = run.pop("datasets", ())
    if training_run is not None:
        validate_run_input(
            method=run.get("method", ""),
            hyperparameters=run.setdefault("hyperparameters", {}),
            framework_versions=run.setdefault("framework_versions", {}),
            started_at=run.get("started_at"),
            finished_at=run.get("finished_at"),
            datasets=run_datasets,
            relations=relations,
            prefix="training_run",
        )

    # Reads first, then the lock, then writes: the lock must precede the first audited write.
    resolved_parents = resolve_parents(actor, parents, "parents")
    resolved_data = [
        (
            resolve_dataset_version(
                actor, use.dataset_version, f"training_run.datasets[{i}].dataset_version"
            ),
            use.role,
        )
        for i, use in enumerate(run_datasets)
    ]
    lineage_write_lock()
    registered_model = _model_for_registration(actor, model, create_model, bool(parents))
    created = registry_services.version_register(
        actor=actor,
        model=registered_model,
        version=version,
        artefact_path=artefact_path,
        artefact_upload=artefact_upload,
        artefact_digest=artefact_digest,
        **attributes,
    )
    if resolved_parents:
        add_parents(actor=actor, child=created, parents=resolved_parents, field="parents")
    if training_run is not None:
        method = run.pop("method")
        record_run(
            actor=actor,
            version=created,
            method=method,
            hyperparameters=run.pop("hyperparameters"),
            datasets=resolved_data,
            run_by=resolve_run_by(created, run.pop("run_by", None), actor, "training_run.run_by"),
            prefix="training_run",
            **run,
        )
    return created
