"""The admin for compliance staff: dashboard, per-version governance page, policy editing."""

import pytest
from django.contrib.auth.models import Permission

from registry import services
from registry.models import AuditEntry, StagePolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(make_user):
    """A compliance officer with the admin permissions the demo grants."""
    user = make_user("olivia", compliance=True, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="registry").exclude(
            codename__startswith="delete_"
        )
    )
    return user


@pytest.fixture
def refused(make_version, engineer, compliance_user):
    StagePolicy.objects.filter(stage="production", risk_tier="limited").update(
        required_checks=["metadata", "approvals"], approvals_required=1
    )
    version = make_version(risk_tier="limited", intended_use="x", known_limitations="y")
    services.version_update(
        actor=compliance_user, version=version, changes={"licence_concluded": "MIT"}
    )
    services.version_promote(actor=engineer, version=version, stage="production")
    return version


def test_dashboard_lists_blocked_versions_with_reasons(client, officer, refused):
    client.force_login(officer)
    page = client.get("/admin/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Compliance dashboard" in html
    assert "Blocked versions (1)" in html
    assert "Awaiting approval, oldest first (1)" in html
    assert str(refused) in html
    assert "0 of 1 required compliance approval" in html


def test_governance_page_approve_then_promote(client, officer, refused):
    client.force_login(officer)
    url = f"/admin/registry/modelversion/{refused.pk}/governance/"
    page = client.get(url, {"stage": "production", "use": "commercial", "distribution": "hosted"})
    assert page.status_code == 200
    assert "FAIL: 1 required check(s) fail." in page.content.decode()
    response = client.post(
        url,
        {
            "action": "approve",
            "stage": "production",
            "decision": "approve",
            "comment": "reviewed",
            # One per line, as the licence check names them; blank lines are ignored.
            "attestations": "LicenseRef-Llama-3.1 user_threshold\r\n\r\n",
        },
        follow=True,
    )
    assert "Approval recorded." in response.content.decode()
    assert refused.approvals.get().attestations == ["LicenseRef-Llama-3.1 user_threshold"]
    response = client.post(
        url,
        {
            "action": "promote",
            "stage": "production",
            "use": "commercial",
            "distribution": "hosted",
            "justification": "go",
        },
        follow=True,
    )
    assert f"{str(refused)[1:]} promoted to production." in response.content.decode()
    refused.refresh_from_db()
    assert refused.stage == "production"
    dashboard = client.get("/admin/").content.decode()
    assert "Blocked versions (0)" in dashboard and "In production (1)" in dashboard


def test_governance_page_shows_service_errors(client, make_user, refused, team):
    insider = make_user("ivan", teams=[team], is_staff=True)
    insider.user_permissions.add(*Permission.objects.filter(codename="view_modelversion"))
    client.force_login(insider)
    url = f"/admin/registry/modelversion/{refused.pk}/governance/"
    response = client.post(
        url, {"action": "approve", "stage": "production", "decision": "approve"}, follow=True
    )
    assert "Only compliance staff can approve" in response.content.decode()
    assert not refused.approvals.exists()


def test_policy_edit_goes_through_the_service(client, officer):
    client.force_login(officer)
    policy = StagePolicy.objects.get(stage="production", risk_tier="high")
    url = f"/admin/registry/stagepolicy/{policy.pk}/change/"
    response = client.post(
        url, {"allowed": "on", "required_checks": '["metadata"]', "approvals_required": "3"}
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.approvals_required == 3 and policy.revision == 2
    assert AuditEntry.objects.filter(action="policy.update", actor=officer).exists()


def test_team_membership_changes_are_audited(admin_client, admin_user, team, engineer):
    url = f"/admin/registry/team/{team.pk}/change/"
    response = admin_client.post(
        url, {"slug": "acme", "name": "Acme ML", "description": "", "members": [admin_user.pk]}
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="team.members")
    assert entry.before == {"members": ["alice"]}
    assert entry.after == {"members": ["admin"]}


def test_admin_edit_audits_the_stored_before_and_freezes_identity(
    client, make_user, team, make_model
):
    insider = make_user("ivy", teams=[team], is_staff=True)
    insider.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_registeredmodel", "change_registeredmodel"])
    )
    model = make_model("acme/m", task="old-task")
    client.force_login(insider)
    url = f"/admin/registry/registeredmodel/{model.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="name"' not in page and 'name="task"' in page
    response = client.post(
        url,
        {
            "visibility": "team",
            "task": "text-classification",
            "description": "",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content
    entry = AuditEntry.objects.filter(action="model.update").get()
    assert entry.before["task"] == "old-task"
    assert entry.after["task"] == "text-classification"


def change_form_data(client, url: str) -> dict:
    """What the change form at `url` would post back unchanged."""
    form = client.get(url).context["adminform"].form
    return {
        name: ("" if value is None else value)
        for name, value in form.initial.items()
        if name in form.fields
    }


def test_version_form_shows_a_refused_licence_and_writes_nothing(client, officer, make_version):
    version = make_version(licence_declared="MIT")
    client.force_login(officer)
    url = f"/admin/registry/modelversion/{version.pk}/change/"
    data = change_form_data(client, url)

    refused = client.post(url, data | {"licence_concluded": "MIT AND Bogus-1.0"})

    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert "Bogus-1.0" in " ".join(errors["licence_concluded"])
    assert "Bogus-1.0" in refused.content.decode()
    version.refresh_from_db()
    assert version.licence_concluded == ""
    assert not AuditEntry.objects.filter(action="version.update").exists()
    accepted = client.post(url, data | {"licence_concluded": "MIT"})
    assert accepted.status_code == 302
    version.refresh_from_db()
    assert version.licence_concluded == "MIT"


def test_version_form_is_403_only_for_a_refused_permission(client, make_user, team, make_version):
    insider = make_user("ivo", teams=[team], is_staff=True)
    insider.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_modelversion", "change_modelversion"])
    )
    version = make_version(licence_declared="MIT")
    client.force_login(insider)
    url = f"/admin/registry/modelversion/{version.pk}/change/"
    data = change_form_data(client, url)

    refused = client.post(url, data | {"licence_concluded": "MIT"})

    assert refused.status_code == 403
    version.refresh_from_db()
    assert version.licence_concluded == ""
    assert not AuditEntry.objects.filter(action="version.update").exists()


def test_policy_form_shows_an_unknown_check_and_writes_nothing(client, officer):
    client.force_login(officer)
    policy = StagePolicy.objects.get(stage="production", risk_tier="high")
    url = f"/admin/registry/stagepolicy/{policy.pk}/change/"

    response = client.post(
        url,
        {
            "allowed": "on",
            "required_checks": '["metadata", "telepathy"]',
            "approvals_required": "3",
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Unknown check(s): telepathy" in " ".join(errors["required_checks"])
    policy.refresh_from_db()
    assert policy.approvals_required != 3 and policy.revision == 1
    assert not AuditEntry.objects.filter(action="policy.update").exists()
