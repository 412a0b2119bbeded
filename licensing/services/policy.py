"""Writes of the licence policy's rules. Every rule change bumps the policy's revision and
stores the rule set as that revision."""

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from licensing.catalogue import CATEGORIES, TERM_TYPES
from licensing.models import (
    CONFLICT_TERM_TYPES,
    RULE_FIELDS,
    Condition,
    Licence,
    LicencePolicy,
    LicencePolicyRevision,
    LicenceRule,
    Scope,
    Severity,
)
from licensing.policy import placeholder_problems
from licensing.services.shared import require_compliance
from registry import services as registry_services
from registry.audit import audit_record
from registry.errors import Conflict, InvalidInput, invalid_from_django
from registry.gates import DISTRIBUTIONS, USES
from registry.models import Stage
from registry.types import Actor


def rule_snapshot(rule: LicenceRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "position": rule.position,
        "enabled": rule.enabled,
        "condition": rule.condition,
        "category": rule.category,
        "licence": rule.licence.spdx_id if rule.licence is not None else None,
        "term_type": rule.term_type,
        "scope": rule.scope,
        "stages": list(rule.stages),
        "uses": list(rule.uses),
        "distributions": list(rule.distributions),
        "severity": rule.severity,
        "message": rule.message,
        "how_to_fix": rule.how_to_fix,
    }


def _choice_list(field: str, value: Any, allowed: Sequence[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInput.for_field(field, f"Give a list drawn from: {', '.join(allowed)}.")
    unknown = sorted({str(item) for item in value} - set(allowed))
    if unknown:
        raise InvalidInput.for_field(
            field, f"Unknown {field}: {', '.join(unknown)}; use any of: {', '.join(allowed)}."
        )
    return [item for item in allowed if item in value]


def _resolve_rule_licence(value: Any) -> Licence | None:
    if value in (None, ""):
        return None
    if isinstance(value, Licence):
        return value
    licence = Licence.objects.filter(spdx_id__iexact=str(value).strip()).first()
    if licence is None:
        raise InvalidInput.for_field(
            "licence",
            f"Unknown licence '{value}': name an SPDX id or catalogue LicenseRef "
            "(see /api/v1/licences/), e.g. 'CC-BY-NC-4.0'.",
        )
    return licence


def _validate_rule(rule: LicenceRule) -> None:
    """Check a rule's fields, naming the bad one and how to fix it."""
    if rule.condition not in Condition.values:
        raise InvalidInput.for_field(
            "condition",
            f"Unknown condition '{rule.condition}'; use one of: {', '.join(Condition.values)}.",
        )
    if rule.severity not in Severity.values:
        raise InvalidInput.for_field(
            "severity", f"Unknown severity '{rule.severity}'; use error, warning or hint."
        )
    if rule.scope not in Scope.values:
        raise InvalidInput.for_field(
            "scope", f"Unknown scope '{rule.scope}'; use one of: {', '.join(Scope.values)}."
        )
    if rule.condition == Condition.CATEGORY:
        if rule.category not in CATEGORIES:
            raise InvalidInput.for_field(
                "category",
                f"Unknown category '{rule.category}'; a category rule needs one of: "
                f"{', '.join(CATEGORIES)}.",
            )
    elif rule.category:
        raise InvalidInput.for_field(
            "category", "Only rules with condition 'category' name a category."
        )
    if rule.condition == Condition.LICENCE and rule.licence_id is None:
        raise InvalidInput.for_field("licence", "A licence rule must name the licence.")
    if rule.condition != Condition.LICENCE and rule.licence_id is not None:
        raise InvalidInput.for_field(
            "licence", "Only rules with condition 'licence' name a licence."
        )
    if rule.condition == Condition.TERM_TYPE and rule.term_type not in TERM_TYPES:
        raise InvalidInput.for_field(
            "term_type",
            f"Unknown term type '{rule.term_type}'; use one of: {', '.join(TERM_TYPES)}.",
        )
    if rule.condition == Condition.CONFLICT and rule.term_type not in CONFLICT_TERM_TYPES:
        raise InvalidInput.for_field(
            "term_type",
            f"A conflict rule names the inherited term that binds the output licence: one of "
            f"{', '.join(CONFLICT_TERM_TYPES)} (got '{rule.term_type}').",
        )
    if (
        rule.condition == Condition.UPSTREAM_TRAINING_DATA
        and rule.term_type
        and rule.term_type not in TERM_TYPES
    ):
        raise InvalidInput.for_field(
            "term_type",
            f"Unknown term type '{rule.term_type}'; use one of: {', '.join(TERM_TYPES)}, or "
            "none for every term of upstream training data.",
        )
    named_term = (Condition.TERM_TYPE, Condition.CONFLICT, Condition.UPSTREAM_TRAINING_DATA)
    if rule.condition not in named_term and rule.term_type:
        raise InvalidInput.for_field(
            "term_type",
            "Only 'term_type', 'conflict' and 'upstream_training_data' rules name a term type.",
        )
    for field in ("message", "how_to_fix"):
        text = getattr(rule, field)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput.for_field(field, f"Write the rule's {field.replace('_', ' ')}.")
        problems = placeholder_problems(text)
        if problems:
            raise InvalidInput.for_field(field, f"{field}: {problems[0]}.")
    try:
        rule.full_clean(exclude=["policy"], validate_unique=False, validate_constraints=False)
    except DjangoValidationError as error:
        raise invalid_from_django(error) from None


def _normalise_rule_values(values: dict[str, Any]) -> dict[str, Any]:
    values = dict(values)
    if "licence" in values:
        values["licence"] = _resolve_rule_licence(values["licence"])
    for field, allowed in (
        ("stages", [stage for stage in Stage.values if stage != Stage.ARCHIVED]),
        ("uses", list(USES)),
        ("distributions", list(DISTRIBUTIONS)),
    ):
        if field in values:
            values[field] = _choice_list(field, values[field], allowed)
    for field in ("category", "term_type"):
        if field in values and values[field] is None:
            values[field] = ""
    return values


def _record_revision(*, actor: Actor, policy: LicencePolicy, change: str) -> LicencePolicy:
    """Bump the policy's revision and store its rules as they now are."""
    policy.revision += 1
    policy.updated_by = actor
    policy.save(update_fields=["revision", "updated_by", "updated_at"])
    rules = [rule_snapshot(rule) for rule in policy.rules.select_related("licence")]
    LicencePolicyRevision.objects.create(
        policy=policy, revision=policy.revision, rules=rules, change=change[:255], changed_by=actor
    )
    registry_services.compliance_recheck_after_commit()  # every version's licence check
    return policy


def _locked_policy(policy: LicencePolicy) -> LicencePolicy:
    # Concurrent rule edits queue here, so revisions are consecutive and snapshots complete.
    return LicencePolicy.objects.select_for_update().get(pk=policy.pk)


def active_policy_or_refuse() -> LicencePolicy:
    policy = LicencePolicy.objects.filter(active=True).first()
    if policy is None:
        raise InvalidInput("No licence policy is active; run manage.py licences_sync first.")
    return policy


def licence_rule_validate(
    *, policy: LicencePolicy, values: dict[str, Any], rule: LicenceRule | None = None
) -> LicenceRule:
    """The rule `values` would make (new, or `rule` changed), validated but not saved; raises
    InvalidInput/Conflict naming the bad field. The admin form uses it to show field errors."""
    unknown = sorted(set(values).difference(RULE_FIELDS))
    if unknown:
        raise InvalidInput(
            f"These fields cannot be changed: {', '.join(unknown)}. "
            f"Changeable: {', '.join(sorted(RULE_FIELDS))}.",
            fields={name: ["This field cannot be changed."] for name in unknown},
        )
    name = values.get("name", rule.name if rule else None)
    taken = LicenceRule.objects.filter(policy=policy, name=name)
    if rule is not None:
        taken = taken.exclude(pk=rule.pk)
    if taken.exists():
        raise Conflict.for_field("name", f"The policy already has a rule named '{name}'.")
    candidate = LicenceRule(policy=policy) if rule is None else rule
    for field, value in _normalise_rule_values(values).items():
        setattr(candidate, field, value)
    _validate_rule(candidate)
    return candidate


@transaction.atomic
def licence_rule_create(
    *,
    actor: Actor,
    name: str,
    condition: str,
    severity: str,
    message: str,
    how_to_fix: str,
    policy: LicencePolicy | None = None,
    position: int | None = None,
    enabled: bool = True,
    category: str = "",
    licence: Licence | str | None = None,
    term_type: str = "",
    scope: str = "any",
    stages: Sequence[str] = (),
    uses: Sequence[str] = (),
    distributions: Sequence[str] = (),
) -> LicenceRule:
    require_compliance(actor, "change the licence policy")
    policy = _locked_policy(policy or active_policy_or_refuse())
    if position is None:
        last = LicenceRule.objects.filter(policy=policy).aggregate(last=Max("position"))["last"]
        position = (last or 0) + 10
    rule = licence_rule_validate(
        policy=policy,
        values={
            "name": name,
            "position": position,
            "enabled": enabled,
            "condition": condition,
            "severity": severity,
            "message": message,
            "how_to_fix": how_to_fix,
            "category": category,
            "licence": licence,
            "term_type": term_type,
            "scope": scope,
            "stages": list(stages),
            "uses": list(uses),
            "distributions": list(distributions),
        },
    )
    try:
        with transaction.atomic():
            rule.save(force_insert=True)
    except IntegrityError as error:
        raise Conflict.for_field(
            "name", f"The policy already has a rule named '{name}'."
        ) from error
    _record_revision(actor=actor, policy=policy, change=f"rule {name} created")
    audit_record(
        actor=actor,
        action="licence_rule.create",
        obj=rule,
        after=rule_snapshot(rule) | {"policy_revision": policy.revision},
    )
    return rule


@transaction.atomic
def licence_rule_update(*, actor: Actor, rule: LicenceRule, changes: dict[str, Any]) -> LicenceRule:
    require_compliance(actor, "change the licence policy")
    policy = _locked_policy(rule.policy)
    rule = LicenceRule.objects.select_related("licence").get(pk=rule.pk)
    before = rule_snapshot(rule)
    rule = licence_rule_validate(policy=policy, values=changes, rule=rule)
    after = rule_snapshot(rule)
    if after == before:
        return rule
    rule.save()
    _record_revision(actor=actor, policy=policy, change=f"rule {rule.name} updated")
    audit_record(
        actor=actor,
        action="licence_rule.update",
        obj=rule,
        before=before,
        after=after | {"policy_revision": policy.revision},
    )
    return rule


@transaction.atomic
def licence_rule_delete(*, actor: Actor, rule: LicenceRule) -> None:
    require_compliance(actor, "change the licence policy")
    policy = _locked_policy(rule.policy)
    rule = LicenceRule.objects.select_related("licence").get(pk=rule.pk)
    before = rule_snapshot(rule)
    rule_id = rule.pk
    rule.delete()
    _record_revision(actor=actor, policy=policy, change=f"rule {before['name']} deleted")
    audit_record(
        actor=actor,
        action="licence_rule.delete",
        object_type="licensing.licencerule",
        object_id=rule_id,
        before=before,
        after={"policy_revision": policy.revision},
    )
