"""One-call registration: a version with its parents, training run and datasets, atomically.

Everything is checked before anything is written: a label the model already has first (409),
then every other problem with the input at once (400, one field each). A dry run checks the
same, then writes the registration in a transaction it rolls back, so it calls valid exactly
what the real call would accept.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from lineage.models import LineageEdge, TrainingDataset, TrainingRun
from lineage.services.edges import ParentSpec, add_parents, check_parent_set, resolve_parents
from lineage.services.shared import lineage_write_lock
from lineage.services.training import (
    DatasetUse,
    check_run_fields,
    record_run,
    resolve_dataset_uses,
    resolve_run_by,
    validate_run_input,
)
from registry import services as registry_services
from registry.audit import audit_batch, audit_seal_before_commit
from registry.errors import FieldErrors, InvalidInput
from registry.models import (
    ArtefactUpload,
    DatasetVersion,
    ModelKind,
    ModelVersion,
    RegisteredModel,
    name_validator,
)
from registry.retry import retry_transaction
from registry.selectors import models_visible_to, team_named
from registry.types import Actor


@dataclass(frozen=True)
class RegistrationPlan:
    """A registration checked against the catalogue, ready to write."""

    model: RegisteredModel | None  # None: `new_model` holds `model_create`'s arguments
    new_model: Mapping[str, Any]
    draft: registry_services.VersionDraft
    parents: list[tuple[ModelVersion, str]]
    # `record_run`'s arguments other than the version and the datasets; None: no run.
    run: Mapping[str, Any] | None
    datasets: list[tuple[DatasetVersion, str]]


def _new_model(
    actor: Actor, name: str, create_model: Mapping[str, Any] | None, has_parents: bool
) -> dict[str, Any]:
    """`model_create`'s arguments for the model a registration creates."""
    if create_model is None:
        raise InvalidInput.for_field(
            "model",
            f'No model \'{name}\' that you can see. Pass create_model: {{"team": "<slug>"}} '
            "to create it in one of your teams as part of this registration.",
        )
    try:
        name_validator(name)
    except DjangoValidationError as error:
        raise InvalidInput.for_field("model", error.messages[0]) from None
    options = dict(create_model)
    team_slug = options.pop("team", None)
    team = team_named(actor, team_slug) if team_slug else None
    if team is None:
        raise InvalidInput.for_field(
            "create_model.team", f"No team '{team_slug}' that you belong to; name one of yours."
        )
    options.setdefault("kind", ModelKind.DERIVED if has_parents else ModelKind.UPSTREAM)
    return {"name": name, "team": team, **options}


def registration_label_check(*, actor: Actor, model: str, version: str) -> None:
    """Refuse (409) a label that the model named, when the actor can see it, already has."""
    existing = models_visible_to(actor).filter(name=model).first()
    if existing is not None:
        registry_services.refuse_taken_label(existing, version)


def _registration_plan(
    *,
    actor: Actor,
    model: str,
    version: str,
    parents: Sequence[ParentSpec] = (),
    training_run: Mapping[str, Any] | None = None,
    create_model: Mapping[str, Any] | None = None,
    artefact_path: str | None = None,
    artefact_upload: ArtefactUpload | UUID | str | None = None,
    artefact_digest: str | None = None,
    **attributes: Any,
) -> RegistrationPlan:
    """Everything `registration_record` checks, in its order, writing nothing."""
    existing = models_visible_to(actor).filter(name=model).first()
    if existing is not None:
        registry_services.refuse_taken_label(existing, version)
        registry_services.require_team_write(actor, existing.team)
    errors = FieldErrors()
    relations = [spec.relation for spec in parents]
    errors.collect(lambda: check_parent_set(relations, "parents"))
    run = dict(training_run or {})
    uses: Sequence[DatasetUse] = run.pop("datasets", ())
    run_by = run.pop("run_by", None)
    if training_run is not None:
        run.setdefault("hyperparameters", {})
        run.setdefault("framework_versions", {})
        errors.collect(
            lambda: validate_run_input(
                method=run.get("method", ""),
                hyperparameters=run["hyperparameters"],
                framework_versions=run["framework_versions"],
                started_at=run.get("started_at"),
                finished_at=run.get("finished_at"),
                datasets=uses,
                relations=relations,
                prefix="training_run",
            )
        )
        errors.collect(lambda: check_run_fields(run, prefix="training_run"))
    resolved_parents = errors.collect(lambda: resolve_parents(actor, parents, "parents"))
    datasets = errors.collect(lambda: resolve_dataset_uses(actor, uses, "training_run.datasets"))
    new_model = (
        errors.collect(lambda: _new_model(actor, model, create_model, bool(parents)))
        if existing is None
        else {}
    )
    team = existing.team if existing is not None else (new_model or {}).get("team")
    if training_run is not None and team is not None:
        run["run_by"] = errors.collect(
            lambda: resolve_run_by(team, run_by, actor, "training_run.run_by")
        )
    draft = registry_services.version_draft_prepare(
        actor=actor,
        model=existing,
        version=version,
        errors=errors,
        artefact_path=artefact_path,
        artefact_upload=artefact_upload,
        artefact_digest=artefact_digest,
        **attributes,
    )
    errors.raise_if_any()
    return RegistrationPlan(
        model=existing,
        new_model=new_model or {},
        draft=draft,
        parents=resolved_parents or [],
        run=run if training_run is not None else None,
        datasets=datasets or [],
    )


@dataclass(frozen=True)
class Registration:
    """What a registration wrote: the version, its parent edges (in id order) and its training
    run with the run's dataset links (in the order a read gives them), as a read would give them
    back, so that answering needs no query."""

    version: ModelVersion
    edges: list[LineageEdge]
    run: TrainingRun | None
    datasets: list[TrainingDataset]


def _registration_write(actor: Actor, plan: RegistrationPlan) -> Registration:
    """Write a checked registration (inside a transaction, lineage lock held)."""
    model = plan.model or registry_services.model_insert(actor=actor, **plan.new_model)
    created = registry_services.version_draft_save(actor=actor, model=model, draft=plan.draft)
    edges = (
        add_parents(
            actor=actor, child=created, parents=plan.parents, field="parents", new_child=True
        )
        if plan.parents
        else []
    )
    run, datasets = (
        record_run(
            actor=actor, version=created, datasets=plan.datasets, prefix="training_run", **plan.run
        )
        if plan.run is not None
        else (None, [])
    )
    return Registration(version=created, edges=edges, run=run, datasets=datasets)


def registration_create(*, actor: Actor, **registration: Any) -> ModelVersion:
    """`registration_record` (same arguments), answering the version alone."""
    return registration_record(actor=actor, **registration).version


@retry_transaction
@transaction.atomic
def registration_record(
    *,
    actor: Actor,
    model: str,
    version: str,
    parents: Sequence[ParentSpec] = (),
    training_run: Mapping[str, Any] | None = None,
    create_model: Mapping[str, Any] | None = None,
    artefact_path: str | None = None,
    artefact_upload: ArtefactUpload | UUID | str | None = None,
    artefact_digest: str | None = None,
    **attributes: Any,
) -> Registration:
    """Register a version with its parents, training run and datasets, atomically; return what
    was written.

    `model` is a model name; when it does not exist yet and `create_model` is given
    (`{"team": slug, "kind"?, "visibility"?, "task"?, "description"?}`) it is created too.
    `version` is the new label. `parents` are `ParentSpec`s. `training_run` holds the keyword
    arguments of `training_run_record` (datasets as `DatasetUse`s). Exactly one artefact source
    (`artefact_path`, `artefact_upload` or `artefact_digest`) and the version's attributes
    (licence, risk metadata…) go to `registry.services.version_draft_prepare`, which inspects the
    files. Anything wrong raises before anything is written, every problem at once.

    The files are inspected before the lineage lock is taken: the lock must precede the first
    audited write, and it is held only while writing. The audit entries are sealed as the last
    step of the transaction, not in a second one after it.
    """
    plan = _registration_plan(
        actor=actor,
        model=model,
        version=version,
        parents=parents,
        training_run=training_run,
        create_model=create_model,
        artefact_path=artefact_path,
        artefact_upload=artefact_upload,
        artefact_digest=artefact_digest,
        **attributes,
    )
    lineage_write_lock(shared=True)  # registrations do not queue behind each other
    with audit_batch():
        written = _registration_write(actor, plan)
    audit_seal_before_commit()
    return written


def registration_check(*, actor: Actor, **registration: Any) -> RegistrationPlan:
    """Check a registration (`registration_record`'s arguments) exactly as `registration_record`
    would, writing nothing: the checks, then the writes themselves in a transaction that is
    rolled back. Returns what would be registered; raises what the real call would raise."""
    with transaction.atomic():
        plan = _registration_plan(actor=actor, **registration)
        lineage_write_lock(shared=True)
        with audit_batch():
            _registration_write(actor, plan)
        transaction.set_rollback(True)
    return plan
