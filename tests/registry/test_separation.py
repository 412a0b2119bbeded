"""Separation of duties: who may approve or waive, whose approvals still count when the gate
reads them, and that promotion is the only way into a stage."""

import importlib
import inspect
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from lineage import services as lineage_services
from registry import gates, services
from registry.errors import FieldErrors, InvalidInput, PermissionRefused
from registry.models import COMPLIANCE_GROUP, ModelVersion
from tests.conftest import digest
from tests.registry.test_gate import check_of

pytestmark = pytest.mark.django_db


def waive(api, version, check, reason="accepted risk"):
    expires = (timezone.now() + timedelta(days=7)).isoformat()
    return api.post(
        f"/api/v1/versions/{version.pk}/waivers/",
        {"check": check, "reason": reason, "expires_at": expires},
        format="json",
    )


def test_nobody_can_waive_the_approvals_check(api_for, make_user, complete):
    """The bypass: an officer waived `approvals` and promoted with none."""
    outside = make_user("olga", compliance=True)
    refused = waive(api_for(outside), complete, "approvals")
    assert refused.status_code == 400
    assert "'approvals' check cannot be waived" in refused.json()["error"]["message"]
    assert not complete.waivers.exists()
    promoted = api_for(outside).post(
        f"/api/v1/versions/{complete.pk}/promote/", {"stage": "production"}, format="json"
    )
    assert promoted.status_code == 409


def test_waivers_follow_the_approval_rules(
    api_for, make_user, team, make_model, make_version, complete, policy, flaky_check
):
    policy.required_checks = ["metadata", "flaky"]
    policy.approvals_required = 0
    policy.save()
    both = make_user("dave", teams=[team], compliance=True)
    own = make_version(make_model(actor=both), actor=both)
    refused = waive(api_for(both), own, "flaky")
    assert refused.status_code == 403
    assert "registered or produced" in refused.json()["error"]["message"]
    # Not the registrant, but in the owning team: still the team's own version.
    teammate = waive(api_for(both), complete, "flaky")
    assert teammate.status_code == 403
    assert "member of team 'acme'" in teammate.json()["error"]["message"]
    with pytest.raises(PermissionRefused, match="separation of duties"):
        services.approval_record(actor=both, version=complete, stage="production")
    assert waive(api_for(make_user("olga", compliance=True)), complete, "flaky").status_code == 201


def test_an_approval_from_someone_since_removed_from_compliance_no_longer_counts(
    make_user, complete, policy
):
    officer = make_user("erin", compliance=True)
    services.approval_record(actor=officer, version=complete, stage="production")
    assert gates.gate_evaluate(version=complete, stage="production").passed
    officer.groups.remove(Group.objects.get(name=COMPLIANCE_GROUP))
    result = check_of(
        gates.gate_evaluate(version=complete, stage="production").to_dict(), "approvals"
    )
    assert not result["passed"]
    assert any("erin is no longer compliance staff" in reason for reason in result["reasons"])
    # Joining the owning team later voids it the same way.
    officer.groups.add(Group.objects.get(name=COMPLIANCE_GROUP))
    assert gates.gate_evaluate(version=complete, stage="production").passed
    complete.model.team.members.add(officer)
    result = check_of(
        gates.gate_evaluate(version=complete, stage="production").to_dict(), "approvals"
    )
    assert not result["passed"]
    assert any("erin has since joined the owning team" in r for r in result["reasons"])


def test_a_deactivated_officers_waiver_no_longer_applies(make_user, complete, policy, flaky_check):
    policy.required_checks = ["metadata", "flaky"]
    policy.approvals_required = 0
    policy.save()
    officer = make_user("erin", compliance=True)
    services.check_waiver_grant(
        actor=officer,
        version=complete,
        check_name="flaky",
        reason="vendor fix due",
        expires_at=timezone.now() + timedelta(days=3),
    )
    assert gates.gate_evaluate(version=complete, stage="production").passed
    officer.is_active = False
    officer.save()
    evaluation = gates.gate_evaluate(version=complete, stage="production").to_dict()
    assert not evaluation["passed"]
    flaky = check_of(evaluation, "flaky")
    assert flaky["waiver"] is None
    lapsed = "no longer applies: erin is no longer compliance staff"
    assert any(lapsed in reason for reason in flaky["reasons"])


# Every service that writes versions, called with a stage: each must refuse it.
def _create(actor, model, **extra):
    return services.version_create(
        actor=actor, model=model, version="v-staged", artefact_digest=digest("s"), **extra
    )


def _register(actor, model, **extra):
    return services.version_register(
        actor=actor, model=model, version="v-staged", artefact_digest=digest("s"), **extra
    )


def _draft(actor, model, **extra):
    errors = FieldErrors()
    services.version_draft_prepare(
        actor=actor,
        model=model,
        version="v-staged",
        errors=errors,
        artefact_digest=digest("s"),
        **extra,
    )
    errors.raise_if_any()


def _registration(actor, model, **extra):
    return lineage_services.registration_create(
        actor=actor, model=model.name, version="v-staged", artefact_digest=digest("s"), **extra
    )


def _registration_record(actor, model, **extra):
    return lineage_services.registration_record(
        actor=actor, model=model.name, version="v-staged", artefact_digest=digest("s"), **extra
    ).version


def _registration_dry_run(actor, model, **extra):
    return lineage_services.registration_check(
        actor=actor, model=model.name, version="v-staged", artefact_digest=digest("s"), **extra
    )


def _update(actor, model, **extra):
    version = ModelVersion.objects.filter(model=model).first()
    return services.version_update(actor=actor, version=version, changes=extra)


def _edit(actor, model, **extra):
    version = ModelVersion.objects.filter(model=model).first()
    return services.version_edit(actor=actor, version=version, changes=extra)


VERSION_WRITERS = {
    "registry.services.version_create": _create,
    "registry.services.version_register": _register,
    "registry.services.version_draft_prepare": _draft,
    "registry.services.version_update": _update,
    "registry.services.version_edit": _edit,
    "lineage.services.registration_create": _registration,
    "lineage.services.registration_record": _registration_record,
    "lineage.services.registration_check": _registration_dry_run,
}
# Services that take free-form fields or a stage but write no version's stage.
NOT_VERSION_WRITERS = {
    "registry.services.version_promote",  # the one way into a stage: runs the gate
    "registry.services.approval_record",  # `stage` names what is approved
    "registry.services.stage_policy_update",
    "registry.services.dataset_update",
    "registry.services.dataset_version_create",
    "registry.services.dataset_version_update",
    "registry.services.dataset_version_edit",
    "registry.services.model_update",
    "registry.services.team_update",
    "registry.services.webhook_endpoint_update",
    "licensing.services.licence_rule_update",
    "licensing.services.licence_update",
    "evaluators.services.suite_update",
    "registry.services.evidence_propose",  # records a proposal; accepting it runs a service
    "lineage.services.training_run_submit",  # `training_run_record`'s fixed keywords
}


def _open_ended_services() -> set[str]:
    """Every public service taking a `stage`, free-form `changes` or keyword attributes."""
    found = set()
    for package in ("registry", "lineage", "licensing", "evaluators"):
        module = importlib.import_module(f"{package}.services")
        for name in module.__all__:
            function = getattr(module, name)
            if not inspect.isfunction(function):
                continue
            parameters = inspect.signature(function).parameters.values()
            if any(p.kind is p.VAR_KEYWORD or p.name in ("stage", "changes") for p in parameters):
                found.add(f"{package}.services.{name}")
    return found


def test_every_open_ended_service_is_classified():
    """A new service that could set a stage must be added to VERSION_WRITERS (and refuse it)."""
    assert _open_ended_services() == set(VERSION_WRITERS) | NOT_VERSION_WRITERS
    upstream = inspect.signature(services.upstream_import).parameters
    assert not any(p.kind is p.VAR_KEYWORD or p.name == "stage" for p in upstream.values())


@pytest.mark.parametrize("writer", sorted(VERSION_WRITERS))
@pytest.mark.parametrize("field", ["stage", "production_exclusive"])
def test_no_service_but_promotion_sets_a_stage(writer, field, engineer, make_model, make_version):
    model = make_model()
    make_version(model)
    value = "production" if field == "stage" else False
    with pytest.raises(InvalidInput) as refused:
        VERSION_WRITERS[writer](engineer, model, **{field: value})
    assert field in refused.value.fields
    assert not ModelVersion.objects.exclude(stage="development").exists()
    assert not ModelVersion.objects.filter(version="v-staged").exists()
