"""Evaluating the licence policy against a version's obligations. Pure: no queries.

A rule fires when it is enabled, the context matches (target stage, intended use,
distribution; an empty list matches any) and its condition holds for a source (the version,
an ancestor, a training dataset), one of its licences or one of the terms that reach the
version. Each firing is a violation naming the rule, the licence, the path, the clause and the
fix. A violation is waived by an unexpired, unrevoked waiver of its rule (for its licence, or
for any licence). Unwaived errors fail the check.

Where a licence expression offers alternatives (OR), each source's alternative is picked to
minimise (unwaived errors, warnings, hints, obligations), in that order: the least restrictive
branch that satisfies the policy. The version's own alternatives are tried one by one, since
share-alike and other conflicts compare the inputs with the output licence.
"""

from licensing.policy.evaluation import evaluate
from licensing.policy.results import SEVERITY_ORDER, Choice, LicenceCheck, Violation
from licensing.policy.rules import PLACEHOLDERS, RuleSpec, WaiverSpec, placeholder_problems

__all__ = [
    "PLACEHOLDERS",
    "SEVERITY_ORDER",
    "Choice",
    "LicenceCheck",
    "RuleSpec",
    "Violation",
    "WaiverSpec",
    "evaluate",
    "placeholder_problems",
]
