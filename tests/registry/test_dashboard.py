"""The dashboard of current state: every list from the stored compliance statuses plus what
lapses soon, each row with why, the next action and a link, counts per stage and tier, and a
constant number of queries as the registry grows."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from licensing import services as licensing_services
from registry import services
from registry.models import GateDecision

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(client, make_user):
    client.force_login(make_user("olivia", compliance=True, is_staff=True))
    return client


@pytest.fixture
def candidate(make_version, conclude):
    """A limited-risk version that lacks only an approval for production."""
    return lambda: conclude(
        make_version(risk_tier="limited", intended_use="Routing", known_limitations="English")
    )


def test_approvals_and_waivers_lapsing_soon_are_listed_soonest_first(
    officer, settings, candidate, make_user, engineer, compliance_user, policy, seeded
):
    settings.PEDIGREE_EXPIRY_WARNING_DAYS = 14
    soon, later, far = candidate(), candidate(), candidate()
    now = timezone.now()
    services.approval_record(actor=compliance_user, version=soon, stage="production")
    soon.approvals.update(expires_at=now + timedelta(days=3))
    services.check_waiver_grant(
        actor=compliance_user,
        version=later,
        check_name="fairness",
        reason="pilot only",
        expires_at=now + timedelta(days=10),
    )
    services.check_waiver_grant(
        actor=compliance_user,
        version=far,
        check_name="fairness",
        reason="pilot only",
        expires_at=now + timedelta(days=40),
    )
    licensing_services.licence_waiver_grant(
        actor=compliance_user,
        version=far,
        rule_name="non-commercial-use",
        reason="licensed by letter",
        approver=make_user("dana", compliance=True),
        expires_at=now + timedelta(days=7),
    )
    html = officer.get("/admin/").content.decode()
    listed = html[html.index('id="expiring"') :]
    assert "lapsing within 14 days (3)" in listed
    order = [
        listed.index(text)
        for text in ("production approval", "licence waiver of", "waiver of fairness")
    ]
    assert order == sorted(order)
    assert f"/admin/registry/modelversion/{soon.pk}/governance/#approve-form" in listed
    assert "/admin/licensing/licencewaiver/" in listed and "/admin/registry/checkwaiver/" in listed
    # The window is a setting: a shorter one leaves the 7- and 10-day ones out.
    settings.PEDIGREE_EXPIRY_WARNING_DAYS = 5
    listed = officer.get("/admin/").content.decode()
    assert "lapsing within 5 days (1)" in listed and "licence waiver of" not in listed


def test_awaiting_approval_is_oldest_first_with_its_age(officer, candidate, engineer, policy):
    first, second = candidate(), candidate()
    for version in (second, first):
        assert not services.version_promote(
            actor=engineer, version=version, stage="production"
        ).passed
    GateDecision.objects.filter(version=first).update(decided_at=timezone.now() - timedelta(days=3))
    html = officer.get("/admin/").content.decode()
    awaiting = html[html.index('id="awaiting-approval"') : html.index('id="never-gated"')]
    assert "oldest first (2)" in awaiting
    assert awaiting.index(str(first)) < awaiting.index(str(second))
    assert "3\xa0days" in awaiting
    # Each row says why, what to do next, and links to the verdict and the governance page.
    assert "production · approvals: 0 of 1 required" in awaiting
    assert "Ask a compliance officer outside the owning team" in awaiting
    assert f"/admin/registry/modelversion/{first.pk}/change/#verdict" in awaiting
    assert f"/admin/registry/modelversion/{first.pk}/governance/" in awaiting


def test_counts_per_stage_and_tier(officer, make_version, candidate, engineer, policy):
    for tier in ("limited", "limited", "high"):
        make_version(risk_tier=tier)
    staged = candidate()
    assert services.version_promote(actor=engineer, version=staged, stage="staging").passed
    html = officer.get("/admin/").content.decode()
    table = html[
        html.index('class="stage-tier-counts"') : html.index(
            "</table>", html.index('class="stage-tier-counts"')
        )
    ]
    rows = {
        row.split("</th>")[0].rsplit(">", 1)[-1]: [
            cell.split("</td>")[0].replace("<strong>", "").replace("</strong>", "")
            for cell in row.split("<td>")[1:]
        ]
        for row in table.split('<th scope="row">')[1:]
        for row in ['<th scope="row">' + row]
    }
    # Columns: development, staging, production, archived.
    assert rows["limited"] == ["2", "1", "0", "0"]
    assert rows["high"] == ["1", "0", "0", "0"]
    assert rows["all tiers"] == ["3", "1", "0", "0"]


def test_the_dashboard_costs_the_same_queries_as_the_registry_grows(
    officer, candidate, engineer, compliance_user, policy
):
    def grow(n):
        for _ in range(n):
            version = candidate()
            services.version_promote(actor=engineer, version=version, stage="production")
            services.check_waiver_grant(
                actor=compliance_user,
                version=version,
                check_name="fairness",
                reason="pilot",
                expires_at=timezone.now() + timedelta(days=5),
            )
        services.compliance_recheck()

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert officer.get("/admin/").status_code == 200
        return len(captured)

    grow(2)
    small = queries()
    grow(6)
    assert queries() == small
