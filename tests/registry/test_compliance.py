"""Continuous compliance and a dashboard that tells the truth: every version's standing is
recomputed from current evidence, and a staged version that stops passing is flagged."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone

from lineage import services as lineage_services
from lineage.models import Hold
from lineage.services import ParentSpec
from registry import services
from registry.models import (
    AuditEntry,
    ComplianceStatus,
    EventDelivery,
    GateDecision,
    StagePolicy,
    WebhookEndpoint,
)
from registry.selectors import compliance_overview

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(db):
    return WebhookEndpoint.objects.create(
        name="pager", url="http://127.0.0.1:9/hook", secret="s", events=[]
    )


@pytest.fixture
def released(make_version, engineer, compliance_user, complete, policy):
    """`complete`, fine-tuned from a base, approved and in production; production requires a
    healthy lineage too."""
    policy.required_checks = ["metadata", "approvals", "lineage_health"]
    policy.save()
    base = make_version(licence_declared="Apache-2.0")
    lineage_services.edges_create(
        actor=engineer, child=complete, parents=[ParentSpec(base, "finetune")]
    )
    services.approval_record(actor=compliance_user, version=complete, stage="production")
    assert services.version_promote(actor=engineer, version=complete, stage="production").passed
    complete.refresh_from_db()
    return complete, base


def status_of(version):
    return ComplianceStatus.objects.get(version=version)


def test_a_hold_on_the_base_puts_a_production_version_out_of_compliance(
    released, compliance_user, hook, django_capture_on_commit_callbacks
):
    version, base = released
    services.compliance_recheck()
    assert status_of(version).state == "compliant"
    with django_capture_on_commit_callbacks(execute=True):
        hold = lineage_services.hold_place(
            actor=compliance_user, version=base, reason="upstream licence withdrawn"
        )
    status = status_of(version)
    assert status.state == "out_of_compliance"
    assert status.out_of_compliance_since is not None
    assert any("upstream licence withdrawn" in r for row in status.failing for r in row["reasons"])
    flagged = AuditEntry.objects.get(action="version.out_of_compliance", object_id=str(version.pk))
    assert flagged.after["failing"][0]["check"] == "lineage_health"
    delivery = EventDelivery.objects.get(event="version.out_of_compliance")
    assert delivery.payload["data"]["version"] == str(version)
    assert "lineage_health" in delivery.payload["data"]["reasons"][0]
    row = compliance_overview()["out_of_compliance"][0]
    assert row["version"] == version and row["what_to_do"]
    # Rechecking again flags nothing twice; lifting the hold clears it, audited.
    services.compliance_recheck()
    assert AuditEntry.objects.filter(action="version.out_of_compliance").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        lineage_services.hold_lift(actor=compliance_user, hold=hold, reason="resolved")
    assert status_of(version).state == "compliant"
    assert AuditEntry.objects.filter(action="version.back_in_compliance").exists()


def test_the_stage_policy_can_hold_what_falls_out_of_compliance(released, compliance_user):
    version, _ = released
    policy = StagePolicy.objects.get(stage="production", risk_tier="limited")
    services.stage_policy_update(
        actor=compliance_user,
        policy=policy,
        changes={"hold_when_out_of_compliance": True, "approvals_required": 1},
    )
    # The policy revision itself voids the approval given under the old one.
    services.compliance_recheck()
    status = status_of(version)
    assert status.state == "out_of_compliance"
    assert any("stage_policy_revision" in r for row in status.failing for r in row["reasons"])
    hold = Hold.objects.get(version=version, lifted_at__isnull=True)
    assert hold.reason.startswith("out of compliance in production")
    assert hold.placed_by.username == "pedigree-system" and not hold.placed_by.is_active


def test_expiring_approvals_are_caught_by_the_scheduled_recheck(released):
    version, _ = released
    out = StringIO()
    call_command("compliance_recheck", stdout=out)
    assert "0 out of compliance" in out.getvalue()
    version.approvals.update(
        created_at=timezone.now() - timedelta(days=200),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    out = StringIO()
    with pytest.raises(SystemExit) as failed:
        call_command("compliance_recheck", stdout=out)
    assert failed.value.code == 1
    assert f"OUT OF COMPLIANCE {version} (production)" in out.getvalue()
    assert "approvals: 0 of 1 required compliance approval" in out.getvalue()


def test_a_concluded_licence_change_is_rechecked_at_once(
    released, api_for, engineer, compliance_user, django_capture_on_commit_callbacks
):
    version, _ = released
    services.compliance_recheck()
    with django_capture_on_commit_callbacks(execute=True):
        services.version_update(
            actor=compliance_user, version=version, changes={"licence_concluded": "MIT"}
        )
    status = status_of(version)
    assert status.state == "out_of_compliance"
    assert any(
        "licence_concluded: 'Apache-2.0' → 'MIT'" in r
        for row in status.failing
        for r in row["reasons"]
    )


def test_the_dashboard_tells_the_truth(
    client, make_user, make_version, engineer, compliance_user, complete, policy
):
    """Blocked is what fails its next gate now, not the last refusal."""
    officer = make_user("olivia", compliance=True, is_staff=True)
    client.force_login(officer)
    never = make_version(risk_tier="limited", intended_use="Routing", known_limitations="English")
    refused = services.version_promote(actor=engineer, version=complete, stage="production")
    assert not refused.passed
    html = client.get("/admin/").content.decode()
    assert "Awaiting approval, oldest first (1)" in html and "Blocked versions (1)" in html
    assert "Never gated (1)" in html and str(never) in html
    services.approval_record(actor=compliance_user, version=complete, stage="production")
    services.compliance_recheck(version_ids=[complete.pk])
    html = client.get("/admin/").content.decode()
    assert "Awaiting approval, oldest first (0)" in html and "Blocked versions (0)" in html
    # A harmless second promote of a version already in staging blocks nothing.
    assert services.version_promote(actor=engineer, version=never, stage="staging").passed
    never.refresh_from_db()
    services.version_promote(actor=engineer, version=never, stage="staging")
    services.compliance_recheck(version_ids=[never.pk])
    assert not GateDecision.objects.filter(version=never, passed=False).exists()
    # It is listed only for what its next gate (production) lacks, never for being in staging.
    row = next(r for r in compliance_overview()["blocked"] if r["version"] == never)
    assert row["stage"] == "staging" and row["target"] == "production"
    assert {check["check"] for check in row["failing"]} <= {"metadata", "approvals"}


def test_the_version_page_picture_and_history_show_the_stored_standing(
    released, client, compliance_user, django_capture_on_commit_callbacks
):
    """The banner reads the stored status (what the dashboard lists and webhooks announced),
    the lineage picture colours the version out of compliance, and History has both flags."""
    version, base = released
    compliance_user.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(compliance_user)
    services.compliance_recheck()
    for licence in ("MIT", "Apache-2.0"):
        with django_capture_on_commit_callbacks(execute=True):
            services.version_update(
                actor=compliance_user, version=version, changes={"licence_concluded": licence}
            )
        if licence == "MIT":
            page = client.get(f"/admin/registry/modelversion/{version.pk}/change/")
            html = page.content.decode()
            banner = html[html.index('id="verdict"') : html.index("</section>")]
            assert "Compliance: out of compliance since" in banner
            reasons = banner[banner.index('class="compliance-reasons"') :]
            assert "<strong>production · approvals</strong>" in reasons
            assert "licence_concluded" in reasons
            assert "It no longer passes the production gate" in banner
            assert "state-out_of_compliance" in html
            picture = client.get(f"/admin/registry/modelversion/{base.pk}/change/")
            assert "state-out_of_compliance" in picture.content.decode()
    history = client.get(f"/admin/registry/modelversion/{version.pk}/history/").content.decode()
    assert "out of compliance" in history
    assert "no longer passes the production gate: approvals:" in history
    assert "back in compliance" in history and "passes the production gate again" in history
    banner = client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    assert "Compliance: compliant" in banner
