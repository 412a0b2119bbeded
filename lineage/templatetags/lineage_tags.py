"""`{% lineage_panel version %}`: the lineage picture and hold reasons for an admin page."""

from django import template
from django.urls import reverse

from lineage.checks import hold_reason
from lineage.picture import NODE_HEIGHT, NODE_WIDTH, version_picture
from lineage.selectors import active_holds_on

register = template.Library()


@register.inclusion_tag("lineage/version_panel.html", takes_context=True)
def lineage_panel(context, version) -> dict:
    user = context["request"].user
    return {
        "version": version,
        "focus": version,
        "picture": version_picture(user, version),
        "node_width": NODE_WIDTH,
        "node_height": NODE_HEIGHT,
        "holds": [
            {"hold": hold, "line": hold_reason(hold, version.pk)}
            for hold in active_holds_on(version.pk)
        ],
        "svg_url": reverse("admin:lineage_lineageedge_graph", args=[version.pk]),
        "api_url": reverse("version-lineage", args=[version.pk]),
    }
