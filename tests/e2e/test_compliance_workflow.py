"""A compliance officer walks the workflow in a real browser: dashboard → version → approve →
promote → dashboard."""

import pytest
from django.contrib.auth.models import Permission
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from registry import services
from registry.models import StagePolicy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def officer(make_user):
    user = make_user("olivia", compliance=True, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="registry").exclude(
            codename__startswith="delete_"
        )
    )
    return user


@pytest.fixture
def blocked(make_version, engineer, compliance_user):
    StagePolicy.objects.update_or_create(
        stage="production",
        risk_tier="limited",
        defaults={"required_checks": ["metadata", "approvals"], "approvals_required": 1},
    )
    version = make_version(
        risk_tier="limited", intended_use="Ticket routing", known_limitations="English only"
    )
    services.version_update(
        actor=compliance_user, version=version, changes={"licence_concluded": "Apache-2.0"}
    )
    services.version_promote(actor=engineer, version=version, stage="production")
    return version


def test_compliance_workflow_in_the_admin(live_server, browser, screenshot, officer, blocked):
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("olivia")
    browser.find_element(By.NAME, "password").send_keys("test-password-123")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    dashboard = browser.find_element(By.ID, "pedigree-dashboard").text
    assert "Blocked versions (1)" in dashboard
    assert "0 of 1 required compliance approval" in dashboard
    screenshot("01-dashboard-blocked")

    browser.find_element(By.CSS_SELECTOR, "table.blocked-versions a[href$='/governance/']").click()
    assert "FAIL" in browser.find_element(By.ID, "gate-verdict").text
    screenshot("02-governance-before-approval")

    approve = browser.find_element(By.ID, "approve-form")
    Select(approve.find_element(By.NAME, "stage")).select_by_value("production")
    approve.find_element(By.NAME, "comment").send_keys("Evidence reviewed")
    submit(browser, approve)
    assert "Approval recorded." in browser.find_element(By.CLASS_NAME, "messagelist").text

    promote = browser.find_element(By.ID, "promote-form")
    Select(promote.find_element(By.NAME, "stage")).select_by_value("production")
    promote.find_element(By.NAME, "justification").send_keys("Release 2026.11")
    submit(browser, promote)
    assert "promoted to production" in browser.find_element(By.CLASS_NAME, "messagelist").text
    screenshot("03-governance-promoted")

    browser.get(f"{live_server.url}/admin/")
    dashboard = browser.find_element(By.ID, "pedigree-dashboard").text
    assert "In production (1)" in dashboard and "Blocked versions (0)" in dashboard
    screenshot("04-dashboard-after")
    blocked.refresh_from_db()
    assert blocked.stage == "production"


def submit(browser, form) -> None:
    """Submit `form` and wait for the answer page: reading it earlier can find the old page's
    messages, gone by the time they are read."""
    form.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(form))
