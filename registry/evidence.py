"""What the gate judges is evidence: a snapshot an approval binds to, the changes that could
weaken a check, and when such changes need compliance staff.

An approval records `evidence_snapshot` when it is given; the approvals check compares it with
the current snapshot and names what changed, so any change to the evidence (made through any
route, by anyone) voids the approvals it touches. Separately, services refuse an engineer's
change that could weaken a check (`weakening_changes`) once the evidence is protected
(`evidence_protection`): a version, or any version whose evidence includes it, has an approval
or is in staging or production.
"""

import hashlib
from typing import Any

from django.db.models import Q

from registry.models import DatasetVersion, ModelVersion, RiskTier, StagePolicy
from registry.plugins import EvidenceProvider, EvidenceUsers, plugins

RISK_ORDER = [RiskTier.MINIMAL, RiskTier.LIMITED, RiskTier.HIGH, RiskTier.UNACCEPTABLE]
PROTECTED_STAGES = ("staging", "production")
# Free text is bound by its hash: the approval names that it changed, not the old text.
_TEXT_FIELDS = ("intended_use", "out_of_scope_uses", "known_limitations")
_HASH_PREFIX = "sha256:"
_PERSONAL_DATA_FLAGS = ("uses_sensitive_personal_data", "contains_personal_data")


def _text_digest(text: str) -> str:
    return _HASH_PREFIX + hashlib.sha256(text.strip().encode()).hexdigest()[:16]


def stage_policy_revision(stage: str, risk_tier: str) -> int:
    revision = (
        StagePolicy.objects.filter(stage=stage, risk_tier=risk_tier)
        .values_list("revision", flat=True)
        .first()
    )
    return revision or 0


def evidence_snapshot(
    version: ModelVersion, stage: str, *, policy_revision: int | None = None
) -> dict[str, Any]:
    """What an approval of `version` for `stage` sees: the weights, the tier, the version's
    licences, use and limitations, the stage policy revision, and what the apps contribute
    (parents, ancestors' and training data's licences, evaluation runs)."""
    if policy_revision is None:
        policy_revision = stage_policy_revision(stage, version.risk_tier)
    snapshot: dict[str, Any] = {
        "artefact_digest": version.artefact_digest,
        "risk_tier": version.risk_tier,
        "licence_declared": version.licence_declared,
        "licence_concluded": version.licence_concluded,
        "uses_sensitive_personal_data": version.uses_sensitive_personal_data,
        "stage_policy_revision": policy_revision,
        **{name: _text_digest(getattr(version, name)) for name in _TEXT_FIELDS},
    }
    for provider in plugins.contributions(EvidenceProvider):
        snapshot[provider.name] = provider.snapshot(version)
    return snapshot


def _flatten(data: Any, path: str, into: dict[str, Any]) -> dict[str, Any]:
    if isinstance(data, dict) and data:
        for key, value in data.items():
            _flatten(value, f"{path}[{key}]" if path else str(key), into)
    else:
        into[path] = data
    return into


def _shown(value: Any) -> str:
    return "nothing" if value in ("", None, {}) else repr(value)


def evidence_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two snapshots, one line per changed item, e.g.
    `risk_tier: 'high' → 'minimal'` or `training_data[acme/data@v1][licence_declared]: …`."""
    old, new = _flatten(before, "", {}), _flatten(after, "", {})
    changes = []
    for path in sorted(old.keys() | new.keys()):
        was, now = old.get(path), new.get(path)
        if was == now:
            continue
        if path not in old:
            changes.append(f"{path}: added ({_shown(now)})")
        elif path not in new:
            changes.append(f"{path}: removed (was {_shown(was)})")
        elif any(isinstance(v, str) and v.startswith(_HASH_PREFIX) for v in (was, now)):
            changes.append(f"{path}: changed")
        else:
            changes.append(f"{path}: {_shown(was)} → {_shown(now)}")
    return changes


def weakening_changes(
    obj: ModelVersion | DatasetVersion, changes: dict[str, Any]
) -> dict[str, str]:
    """The changes (licence fields already normalised) that could let a check pass that failed
    before, by field: a lower risk tier, a different licence, narrower limitations, a changed
    intended use, personal data no longer declared."""
    found = {}
    for field, new in changes.items():
        old = getattr(obj, field, None)
        label = field.replace("_", " ")
        if field == "risk_tier" and new in RISK_ORDER and old in RISK_ORDER:
            if RISK_ORDER.index(new) < RISK_ORDER.index(old):
                found[field] = f"lowering the risk tier from {old} to {new}"
        elif field in ("licence_declared", "licence_concluded") and old and new != old:
            found[field] = f"changing the {label} from {old} to {new or 'nothing'}"
        elif field in ("known_limitations", "out_of_scope_uses") and (old or "").strip():
            if str(old).strip() not in (new or ""):
                found[field] = f"removing {label} (fewer limitations)"
        elif field == "intended_use" and (old or "").strip() != (new or "").strip() and old:
            found[field] = "changing the intended use"
        elif field in _PERSONAL_DATA_FLAGS and old and not new:
            found[field] = f"clearing '{label}'"
    return found


def evidence_user_ids(obj: ModelVersion | DatasetVersion) -> list[int]:
    """The versions whose gate evidence includes `obj` (see `EvidenceUsers`)."""
    return [
        version_id
        for users in plugins.contributions(EvidenceUsers)
        for version_id in users.version_ids(obj)
    ]


def evidence_protection(obj: ModelVersion | DatasetVersion) -> str | None:
    """Why changes to `obj` that could weaken a check need compliance staff, or None: `obj`
    (a version) or a version whose evidence includes it has an approval or is in staging or
    production."""
    ids = set(evidence_user_ids(obj))
    if isinstance(obj, ModelVersion):
        ids.add(obj.pk)
    if not ids:
        return None
    protected = (
        ModelVersion.objects.filter(pk__in=ids)
        .filter(Q(stage__in=PROTECTED_STAGES) | Q(approvals__decision="approve"))
        .select_related("model")
        .order_by("-stage", "pk")
        .first()
    )
    if protected is None:
        return None
    where = (
        f"is in {protected.stage}"
        if protected.stage in PROTECTED_STAGES
        else "has a compliance approval"
    )
    whose = "" if protected.pk == obj.pk and isinstance(obj, ModelVersion) else " (it uses this)"
    return f"{protected} {where}{whose}"
