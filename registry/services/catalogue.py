"""Writes to the catalogue: teams, models, versions, datasets and dataset versions."""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from registry.audit import audit_record
from registry.errors import Conflict, PermissionRefused
from registry.evidence import evidence_user_ids
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team
from registry.selectors import is_compliance
from registry.services._common import (
    apply_changes,
    normalise_licences,
    refuse_promotion_fields,
    refuse_weakening,
    require_team_write,
    save_new,
    snapshot,
)
from registry.services.compliance import compliance_recheck_after_commit
from registry.types import Actor

MODEL_UPDATABLE = {"task", "description", "visibility", "allow_multiple_production"}
VERSION_UPDATABLE = {
    "description",
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


@transaction.atomic
def team_create(*, actor: Actor, slug: str, name: str, description: str = "") -> Team:
    if not (is_compliance(actor) or actor.is_staff):
        raise PermissionRefused("Only compliance staff or administrators can create teams.")
    if Team.objects.filter(slug=slug).exists():
        raise Conflict.for_field("slug", f"A team with slug '{slug}' already exists.")
    team = Team(slug=slug, name=name, description=description)
    save_new(team, unique_field="slug", unique_message=f"Team '{slug}' already exists.")
    audit_record(actor=actor, action="team.create", obj=team, after=snapshot(team))
    return team


@transaction.atomic
def team_update(*, actor: Actor, team: Team, changes: dict[str, Any]) -> Team:
    if not (is_compliance(actor) or actor.is_staff):
        require_team_write(actor, team)
    before = apply_changes(team, changes, {"name", "description"})
    team.save()
    audit_record(actor=actor, action="team.update", obj=team, before=before, after=snapshot(team))
    return team


def team_members_set_audit(
    *, actor: Actor, team: Team, before: list[str], after: list[str]
) -> None:
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
def team_member_add(*, actor: Actor, team: Team, user: User) -> None:
    if not (is_compliance(actor) or actor.is_staff):
        raise PermissionRefused("Only compliance staff or administrators can change team members.")
    team.members.add(user)
    user.__dict__.pop("_pedigree_team_ids", None)
    audit_record(actor=actor, action="team.member_add", obj=team, after={"user": user.username})


@transaction.atomic
def model_create(
    *,
    actor: Actor,
    name: str,
    kind: str,
    team: Team,
    visibility: str = "team",
    task: str = "",
    description: str = "",
    allow_multiple_production: bool = False,
) -> RegisteredModel:
    return model_insert(
        actor=actor,
        name=name,
        kind=kind,
        team=team,
        visibility=visibility,
        task=task,
        description=description,
        allow_multiple_production=allow_multiple_production,
    )


def model_insert(
    *,
    actor: Actor,
    name: str,
    kind: str,
    team: Team,
    visibility: str = "team",
    task: str = "",
    description: str = "",
    allow_multiple_production: bool = False,
) -> RegisteredModel:
    """`model_create` inside the caller's transaction: a registration writing several rows
    saves the savepoint a nested transaction would cost."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("model_insert must be called inside a transaction")
    require_team_write(actor, team)
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
    save_new(
        model,
        unique_field="name",
        unique_message=f"A model named '{name}' already exists; register a new version of it "
        "instead.",
    )
    audit_record(actor=actor, action="model.create", obj=model, after=snapshot(model))
    return model


@transaction.atomic
def model_update(
    *, actor: Actor, model: RegisteredModel, changes: dict[str, Any]
) -> RegisteredModel:
    require_team_write(actor, model.team)
    before = apply_changes(model, changes, MODEL_UPDATABLE)
    model.save()
    audit_record(
        actor=actor, action="model.update", obj=model, before=before, after=snapshot(model)
    )
    return model


@transaction.atomic
def version_create(
    *, actor: Actor, model: RegisteredModel, version: str, artefact_digest: str, **attributes: Any
) -> ModelVersion:
    return version_insert(
        actor=actor, model=model, version=version, artefact_digest=artefact_digest, **attributes
    )


def version_insert(
    *, actor: Actor, model: RegisteredModel, version: str, artefact_digest: str, **attributes: Any
) -> ModelVersion:
    """`version_create` inside the caller's transaction: a registration writing several rows
    saves the savepoint a nested transaction would cost."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("version_insert must be called inside a transaction")
    refuse_promotion_fields(attributes)
    require_team_write(actor, model.team)
    if "licence_concluded" in attributes and not is_compliance(actor):
        raise PermissionRefused.for_field(
            "licence_concluded", "Only compliance staff can set the concluded licence."
        )
    attributes = normalise_licences(attributes)
    instance = ModelVersion(
        model=model,
        version=version,
        artefact_digest=artefact_digest,
        registered_by=actor,
        **attributes,
    )
    save_new(
        instance,
        unique_field="version",
        unique_message=f"{model.name} already has a version '{version}'; pick a new label.",
    )
    audit_record(actor=actor, action="version.create", obj=instance, after=snapshot(instance))
    return instance


def version_changes_checked(
    *, actor: Actor, version: ModelVersion, changes: dict[str, Any]
) -> dict[str, Any]:
    """`changes` to a version with licences normalised, once `actor` may make them at all."""
    compliance_fields = set(changes) & COMPLIANCE_ONLY_FIELDS
    if compliance_fields and not is_compliance(actor):
        raise PermissionRefused.for_field(
            "licence_concluded", "Only compliance staff can set the concluded licence."
        )
    # Compliance staff conclude evidence changes on any team's versions (registry.evidence).
    if set(changes) - COMPLIANCE_ONLY_FIELDS and not is_compliance(actor):
        require_team_write(actor, version.model.team)
    return normalise_licences(dict(changes))


@transaction.atomic
def version_update(*, actor: Actor, version: ModelVersion, changes: dict[str, Any]) -> ModelVersion:
    """Change a version's fields. A change that could weaken protected evidence is refused to
    anyone but compliance staff (403 `evidence_protected`); `registry.services.proposals`
    records it as a proposal instead, which is what the API and the admin do."""
    changes = version_changes_checked(actor=actor, version=version, changes=changes)
    refuse_weakening(actor, version, changes)
    before = apply_changes(version, changes, VERSION_UPDATABLE | COMPLIANCE_ONLY_FIELDS)
    version.save()
    audit_record(
        actor=actor, action="version.update", obj=version, before=before, after=snapshot(version)
    )
    compliance_recheck_after_commit([version.pk, *evidence_user_ids(version)])
    return version


@transaction.atomic
def dataset_create(
    *,
    actor: Actor,
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
    save_new(dataset, unique_field="name", unique_message=f"Dataset '{name}' already exists.")
    audit_record(actor=actor, action="dataset.create", obj=dataset, after=snapshot(dataset))
    return dataset


@transaction.atomic
def dataset_update(*, actor: Actor, dataset: Dataset, changes: dict[str, Any]) -> Dataset:
    require_team_write(actor, dataset.team)
    before = apply_changes(dataset, changes, DATASET_UPDATABLE)
    dataset.save()
    audit_record(
        actor=actor, action="dataset.update", obj=dataset, before=before, after=snapshot(dataset)
    )
    return dataset


@transaction.atomic
def dataset_version_create(
    *, actor: Actor, dataset: Dataset, version: str, sha256: str, size_bytes: int, **attributes: Any
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
    save_new(
        instance,
        unique_field="version",
        unique_message=f"{dataset.name}@{version} already exists.",
    )
    audit_record(
        actor=actor, action="dataset_version.create", obj=instance, after=snapshot(instance)
    )
    return instance


def dataset_version_changes_checked(
    *, actor: Actor, dataset_version: DatasetVersion, changes: dict[str, Any]
) -> dict[str, Any]:
    """`changes` to a dataset version with licences normalised, once `actor` may make them."""
    if set(changes) & COMPLIANCE_ONLY_FIELDS and not is_compliance(actor):
        raise PermissionRefused.for_field(
            "licence_concluded", "Only compliance staff can set the concluded licence."
        )
    # Compliance staff conclude evidence changes on any team's versions (registry.evidence).
    if set(changes) - COMPLIANCE_ONLY_FIELDS and not is_compliance(actor):
        require_team_write(actor, dataset_version.dataset.team)
    return normalise_licences(dict(changes))


@transaction.atomic
def dataset_version_update(
    *, actor: Actor, dataset_version: DatasetVersion, changes: dict[str, Any]
) -> DatasetVersion:
    """Change a dataset version's fields; weakening protected evidence as `version_update`."""
    changes = dataset_version_changes_checked(
        actor=actor, dataset_version=dataset_version, changes=changes
    )
    refuse_weakening(actor, dataset_version, changes)
    before = apply_changes(
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
    compliance_recheck_after_commit(evidence_user_ids(dataset_version))
    return dataset_version
