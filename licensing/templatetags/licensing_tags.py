"""`{% licence_panel version %}`: the licence panel of a version's admin page, for any page."""

from typing import Any

from django import template

from licensing.admin import version_panel_context

register = template.Library()


@register.inclusion_tag("licensing/version_panel.html", takes_context=True)
def licence_panel(context: template.Context, version) -> dict[str, Any]:
    return version_panel_context(context.get("request"), version)
