"""The compliance console's own pages on a version: its timeline (History), the comparison with
another version and the evidence pack."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from registry.console import (
    evidence_pack,
    next_stage,
    production_counterpart,
    stage_verdict,
    version_comparison,
    version_timeline,
)
from registry.models import ModelVersion
from registry.selectors import version_in, versions_visible_to


def _version(request: HttpRequest, object_id: str) -> ModelVersion:
    return get_object_or_404(versions_visible_to(request.user), pk=object_id)


def _context(model_admin, request: HttpRequest, version: ModelVersion, title: str) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "original": version,
        "version": version,
    }


def timeline_view(model_admin, request: HttpRequest, object_id: str) -> TemplateResponse:
    """History of a version: everything recorded about it, oldest first."""
    version = _version(request, object_id)
    context = {
        **_context(model_admin, request, version, f"History of {version}"),
        "timeline": version_timeline(version),
    }
    return TemplateResponse(request, "admin/registry/modelversion/timeline.html", context)


def compare_view(model_admin, request: HttpRequest, object_id: str) -> TemplateResponse:
    """The version (right) beside another (left; by default the one in production of the same
    model), with `right - left` deltas."""
    candidate = _version(request, object_id)
    visible = versions_visible_to(request.user)
    ref = request.GET.get("with", "").strip()
    other = version_in(visible, ref) if ref else production_counterpart(request.user, candidate)
    if ref and other is None:
        messages.error(
            request,
            f"No version {ref!r} that you may read; give an id or MODEL@VERSION, e.g. "
            f"{candidate.model.name}@1.0.",
        )
    context = {
        **_context(model_admin, request, candidate, f"Compare {candidate}"),
        "other": other,
        "ref": ref,
        "sections": version_comparison(request.user, other, candidate) if other else [],
        "siblings": visible.filter(model_id=candidate.model_id).exclude(pk=candidate.pk)[:50],
    }
    return TemplateResponse(request, "admin/registry/modelversion/compare.html", context)


def evidence_view(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    """The evidence pack (zip) for the stage asked (default: the next one, else its own)."""
    version = _version(request, object_id)
    verdict_stage = request.GET.get("stage") or (
        next_stage(version, version.decisions.first()) or version.stage
    )
    if verdict_stage not in ("staging", "production", "archived"):
        verdict_stage = "production"
    evaluation = stage_verdict(version=version, stage=verdict_stage, actor=request.user)
    filename, data = evidence_pack(reader=request.user, version=version, evaluation=evaluation)
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
