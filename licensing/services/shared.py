"""What every licensing write shares: only compliance staff change licences, policy and
waivers."""

from registry.errors import PermissionRefused
from registry.selectors import is_compliance
from registry.types import Actor


def require_compliance(actor: Actor, what: str) -> None:
    if not is_compliance(actor):
        raise PermissionRefused(f"Only compliance staff can {what}.")
