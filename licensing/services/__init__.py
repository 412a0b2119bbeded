"""Writes: catalogue sync, compliance's licence corrections, policy rules and waivers.

Every write checks permission, validates, and is audited in the same transaction. Every rule
change bumps the policy's revision and stores the rule set as that revision.
"""

from licensing.services.catalogue import LICENCE_EDITABLE, licence_update, licences_sync
from licensing.services.policy import (
    licence_rule_create,
    licence_rule_delete,
    licence_rule_update,
    licence_rule_validate,
    rule_snapshot,
)
from licensing.services.waivers import (
    WaiverRequest,
    licence_waiver_grant,
    licence_waiver_revoke,
    licence_waiver_validate,
)

__all__ = [
    "LICENCE_EDITABLE",
    "WaiverRequest",
    "licence_rule_create",
    "licence_rule_delete",
    "licence_rule_update",
    "licence_rule_validate",
    "licence_update",
    "licence_waiver_grant",
    "licence_waiver_revoke",
    "licence_waiver_validate",
    "licences_sync",
    "rule_snapshot",
]
