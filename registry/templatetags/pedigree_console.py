"""Filters of the compliance console's templates (the admin pages and the evidence PDF)."""

from typing import Any

from django import template

from registry.console import significant as _significant
from registry.console import waive_links as _waive_links
from registry.gates import GateEvaluation

register = template.Library()


@register.filter
def waived_checks(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in results if row.get("waiver")]


@register.filter
def split(text: str) -> list[str]:
    return text.split()


@register.filter
def significant(value: Any) -> str:
    """Three significant digits."""
    return _significant(value)


@register.filter
def waive_links(row: dict[str, Any], evaluation: GateEvaluation) -> list[tuple[str, str]]:
    return _waive_links(evaluation, row)
