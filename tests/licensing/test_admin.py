"""The licensing admin: refused input comes back on the form with nothing written; only a
refused permission is a 403 page."""

import pytest
from django.contrib.auth.models import Permission

from licensing.models import Licence, LicencePolicy, LicenceRule
from registry.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(make_user, licence_tables):
    """A compliance officer with the licensing admin permissions (no deletions)."""
    user = make_user("olivia", compliance=True, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="licensing").exclude(
            codename__startswith="delete_"
        )
    )
    return user


def rule_form(rule: LicenceRule, **overrides) -> dict:
    return {
        "name": rule.name,
        "position": rule.position,
        "enabled": "on" if rule.enabled else "",
        "condition": rule.condition,
        "category": rule.category,
        "licence": rule.licence_id or "",
        "term_type": rule.term_type,
        "scope": rule.scope,
        "stages": rule.stages,
        "uses": rule.uses,
        "distributions": rule.distributions,
        "severity": rule.severity,
        "message": rule.message,
        "how_to_fix": rule.how_to_fix,
    } | overrides


def test_rule_form_shows_a_taken_name_and_writes_nothing(client, officer):
    policy = LicencePolicy.objects.get(active=True)
    revision = policy.revision
    first, second = policy.rules.all()[:2]
    client.force_login(officer)

    response = client.post(
        f"/admin/licensing/licencerule/{second.pk}/change/", rule_form(second, name=first.name)
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert f"already has a rule named '{first.name}'" in " ".join(errors["name"])
    policy.refresh_from_db()
    assert policy.revision == revision
    assert LicenceRule.objects.get(pk=second.pk).name == second.name
    assert not AuditEntry.objects.filter(action="licence_rule.update").exists()


def test_licence_form_is_403_for_staff_without_compliance(client, make_user, licence_tables):
    staff = make_user("sam", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_licence", "change_licence"])
    )
    licence = Licence.objects.get(spdx_id="MIT")
    client.force_login(staff)

    response = client.post(
        f"/admin/licensing/licence/{licence.pk}/change/",
        {"category": "copyleft", "review_required": "on", "notes": ""},
    )

    assert response.status_code == 403
    licence.refresh_from_db()
    assert licence.category == "permissive" and not licence.compliance_override
