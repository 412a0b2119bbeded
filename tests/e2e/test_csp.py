"""The pages a browser opens work under the Content-Security-Policy: the admin's dashboard, a
version's page with its lineage picture and licence panel, the governance page, the standalone
lineage SVG and the API docs (Swagger UI, whose scripts must run), with nothing refused."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from lineage.services.edges import edge_create
from tests.e2e.conftest import csp_violations

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_console_and_api_docs_work_under_the_policy(
    live_server, browser, make_user, make_version, engineer
):
    make_user("root", is_staff=True, is_superuser=True)
    parent = make_version()
    child = make_version()
    edge_create(actor=engineer, child=child, parent=parent, relation="finetune")

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("root")
    browser.find_element(By.NAME, "password").send_keys("test-password-123")
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(page))
    dashboard = browser.find_element(By.ID, "pedigree-dashboard")
    # The dashboard's spacing now comes from the stylesheet, not a refused style attribute.
    assert dashboard.value_of_css_property("margin-bottom") != "0px"

    admin = f"{live_server.url}/admin/registry/modelversion/{child.pk}"
    browser.get(f"{admin}/change/")
    picture = browser.find_element(By.CSS_SELECTOR, ".lineage-picture")
    assert picture.value_of_css_property("overflow") == "auto"
    assert picture.find_elements(By.CSS_SELECTOR, "svg g.node")
    browser.get(f"{admin}/governance/")
    browser.find_element(By.ID, "approve-form")
    browser.get(f"{live_server.url}/admin/lineage/lineageedge/graph/{child.pk}.svg")
    assert "Lineage of" in browser.find_element(By.TAG_NAME, "title").get_attribute("textContent")
    assert csp_violations(browser) == []

    # Swagger UI draws the operations only if its bundle and start-up script ran.
    browser.get(f"{live_server.url}/api/docs/")
    WebDriverWait(browser, 30).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, ".opblock-tag")
    )
    assert csp_violations(browser) == []
