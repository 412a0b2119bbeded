"""Admin for compliance staff. Writes go through the same services as the API."""

from registry.admin import catalogue, events, governance, proposals

__all__ = ["catalogue", "events", "governance", "proposals"]
