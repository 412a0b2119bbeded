"""What the policy is made of: rules (with the placeholders their texts may use) and waivers."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from licensing.obligations import UPSTREAM_DATA, LicenceInfo, Source

UPSTREAM_TRAINING_DATA = "upstream_training_data"

PLACEHOLDERS: dict[str, str] = {
    "licence": "the licence's SPDX id",
    "licence_name": "the licence's full name",
    "category": "the licence's category",
    "term": "the term type",
    "value": "the term's value (name prefix, user threshold, policy URL)",
    "clause": "the clause the term cites",
    "source": "the version, ancestor or dataset the licence comes from",
    "path": "how the licence reaches the version",
    "model": "the model's name",
    "version": "the version (MODEL@VERSION)",
    "output_licence": "the version's own licence (the chosen alternative)",
    "stage": "the target stage",
    "use": "the intended use",
    "distribution": "how the version is distributed",
}


def placeholder_problems(text: str) -> list[str]:
    """Unknown or malformed placeholders in a rule's message or fix."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as error:
        return [f"{error} (write a literal brace as '{{{{' or '}}}}')"]
    unknown = sorted({name for name in names if name not in PLACEHOLDERS})
    return [
        f"unknown placeholder {{{name}}}; use one of: "
        + ", ".join(f"{{{known}}}" for known in PLACEHOLDERS)
        for name in unknown
    ]


@dataclass(frozen=True)
class RuleSpec:
    name: str
    condition: str
    severity: str
    message: str
    how_to_fix: str
    category: str = ""
    licence: str = ""
    term_type: str = ""
    scope: str = "any"
    stages: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    distributions: tuple[str, ...] = ()
    position: int = 0
    enabled: bool = True

    def applies_in(self, *, stage: str, use: str, distribution: str) -> bool:
        return (
            self.enabled
            and (not self.stages or stage in self.stages)
            and (not self.uses or use in self.uses)
            and (not self.distributions or distribution in self.distributions)
        )

    def in_scope(self, source: Source) -> bool:
        # An upstream card's training data is judged by its own condition alone, so the policy
        # decides how much it weighs (a hint by default) apart from data a team trained on.
        if (source.kind == UPSTREAM_DATA) != (self.condition == UPSTREAM_TRAINING_DATA):
            return False
        if self.scope == "own":
            return source.kind == "self"
        if self.scope == "inherited":
            return source.kind != "self"
        return True

    def covers(self, licence: LicenceInfo) -> bool:
        """Whether the rule speaks about the licence, whatever the context: what the
        catch-all looks at."""
        match self.condition:
            case "category":
                return licence.category == self.category
            case "licence":
                return licence.id == self.licence
            case "term_type" | "conflict":
                return self.term_type in licence.term_types
            case "unknown_licence":
                return licence.category == "unknown"
            case "unreviewed_licence":
                return licence.review_required
        return False


@dataclass(frozen=True)
class WaiverSpec:
    id: int
    rule_name: str
    licence_id: str
    reason: str
    approver: str
    granted_by: str
    expires_at: datetime

    def matches(self, rule: str, licence: str) -> bool:
        return self.rule_name == rule and self.licence_id in ("", licence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule_name,
            "licence": self.licence_id or None,
            "reason": self.reason,
            "approver": self.approver,
            "granted_by": self.granted_by,
            "expires_at": self.expires_at.isoformat(),
        }
