"""Writes to the catalogue. Every write checks permission, validates, and is audited atomically."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db import models as dj_models
from django.forms.models import model_to_dict
from django.utils import timezone

from registry.audit import audit_record
from registry.errors import Conflict, InvalidInput, PermissionRefused, invalid_from_django
from registry.gates import DISTRIBUTIONS, USES, involved_user_ids, registered_checks
from registry.models import (
    Approval,
    ApprovalDecision,
    CheckWaiver,
    Dataset,
    DatasetVersion,
    EventDelivery,
    GateDecision,
    ModelVersion,
    RegisteredModel,
    Stage,
    StagePolicy,
    Team,
    WebhookEndpoint,
)
from registry.selectors import gate_evaluate, is_compliance, is_team_member

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
    for name, value in changes.items():
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


@transaction.atomic
def version_create(
    *, actor, model: RegisteredModel, version: str, artefact_digest: str, **attributes: Any
) -> ModelVersion:
    require_team_write(actor, model.team)
    if "licence_concluded" in attributes and not is_compliance(actor):
        raise PermissionRefused.for_field(
            "licence_concluded", "Only compliance staff can set the concluded licence."
        )
    if ModelVersion.objects.filter(model=model, version=version).exists():
        raise Conflict.for_field(
            "version", f"{model.name} already has a version '{version}'; pick a new label."
        )
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
