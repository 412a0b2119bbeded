"""The compliance console: the version page opens on its verdict, readable evidence, the
timeline behind History, compare, CSV export of every list and the evidence pack."""

import csv
import io
import zipfile

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader

from registry import services
from registry.audit import audit_seal
from registry.models import AuditEntry, GateDecision, StagePolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(make_user):
    user = make_user("olivia", compliance=True, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["registry", "lineage", "licensing", "evaluators"]
        ).exclude(codename__startswith="delete_")
    )
    return user


@pytest.fixture
def policy():
    StagePolicy.objects.filter(stage="production", risk_tier="limited").update(
        required_checks=["metadata", "approvals"], approvals_required=1
    )


@pytest.fixture
def released(make_version, make_model, compliance_user, engineer, policy, make_user):
    """acme/intent v1 in production (approved by another officer) and v2, a candidate whose
    model card misses its known limitations, refused once."""
    model = make_model("acme/intent")
    v1 = make_version(
        model,
        version="v1",
        risk_tier="limited",
        intended_use="routing",
        known_limitations="English only",
        parameter_count=1000,
    )
    v2 = make_version(
        model, version="v2", risk_tier="limited", intended_use="routing", parameter_count=1500
    )
    for version in (v1, v2):
        services.version_update(
            actor=compliance_user, version=version, changes={"licence_concluded": "Apache-2.0"}
        )
    services.approval_record(actor=compliance_user, version=v1, stage="production")
    services.version_promote(actor=engineer, version=v1, stage="production")
    services.version_promote(actor=engineer, version=v2, stage="production")
    v1.refresh_from_db()
    return v1, v2


def test_version_page_opens_on_the_verdict_with_its_actions(client, officer, released):
    _, candidate = released
    client.force_login(officer)
    html = client.get(f"/admin/registry/modelversion/{candidate.pk}/change/").content.decode()
    banner = html[html.index('id="verdict"') : html.index("</section>", html.index('id="verdict"'))]
    # The banner comes before the edit form.
    assert html.index('id="verdict"') < html.index('id="modelversion_form"')
    assert "Next, production (commercial, hosted): blocked — 2 check(s) fail" in banner
    assert "missing known limitations" in banner
    assert "waive=metadata" in banner and "Approve for production" in banner
    assert "Compare with acme/intent@v1 (production)" in banner
    assert "Promote to production" in banner
    # "Place a hold…" opens the hold form with the version chosen.
    hold = client.get(f"/admin/lineage/hold/add/?version={candidate.pk}").content.decode()
    assert f'<option value="{candidate.pk}" selected>{candidate}</option>' in hold


def test_a_released_version_does_not_open_on_already_in_production(client, officer, released):
    production, _ = released
    client.force_login(officer)
    page = client.get(f"/admin/registry/modelversion/{production.pk}/change/").content.decode()
    assert "In production: still meets the production policy" in page
    assert "already in production" not in page
    governance = client.get(f"/admin/registry/modelversion/{production.pk}/governance/")
    text = governance.content.decode()
    assert "Does it still meet the production policy" in text
    assert "PASS: every required check passes." in text
    assert "already in production" not in text


def test_banner_actions_act_and_come_back_to_the_version_page(client, officer, released):
    _, candidate = released
    client.force_login(officer)
    page = f"/admin/registry/modelversion/{candidate.pk}/change/"
    governance = f"/admin/registry/modelversion/{candidate.pk}/governance/"
    # The waiver form is pre-filled from the violation the banner links from.
    form = client.get(governance, {"stage": "production", "waive": "metadata"}).content.decode()
    assert (
        'value="metadata"' in form
        and "Accepted risk: " in form
        and "missing known limitations" in form
    )
    answer = client.post(
        governance,
        {
            "action": "approve",
            "decision": "approve",
            "stage": "production",
            "comment": "",
            "next": page,
        },
    )
    assert answer.status_code == 302 and answer["Location"] == page
    outside = client.post(
        governance,
        {
            "action": "approve",
            "decision": "reject",
            "stage": "production",
            "comment": "no",
            "next": "https://evil.example/",
        },
    )
    assert outside["Location"] == governance
    assert candidate.approvals.count() == 2


def test_history_is_the_version_timeline(client, officer, released):
    _, candidate = released
    client.force_login(officer)
    html = client.get(f"/admin/registry/modelversion/{candidate.pk}/history/").content.decode()
    assert "version.create by alice" in html or "version.create by" in html
    assert "licence_concluded: &#x27;&#x27; → &#x27;Apache-2.0&#x27;" in html
    assert "development → production (commercial, hosted) refused" in html
    decision = GateDecision.objects.get(version=candidate)
    assert f"/admin/registry/gatedecision/{decision.pk}/change/" in html
    # The audit log filtered to the version, as History links to it.
    listed = client.get(
        "/admin/registry/auditentry/",
        {"object_type": "registry.modelversion", "object_id": candidate.pk},
    )
    assert listed.status_code == 200
    assert (
        listed.context["cl"].result_count
        == AuditEntry.objects.filter(
            object_type="registry.modelversion", object_id=str(candidate.pk)
        ).count()
    )


def test_gate_decisions_and_audit_entries_read_as_tables_with_links(client, officer, released):
    production, candidate = released
    client.force_login(officer)
    decision = GateDecision.objects.get(version=production, passed=True)
    html = client.get(f"/admin/registry/gatedecision/{decision.pk}/change/").content.decode()
    approval = production.approvals.get()
    assert "<table class='gate-checks'>" in html
    assert f"/admin/registry/approval/{approval.pk}/change/" in html
    assert f"/admin/registry/modelversion/{production.pk}/change/" in html
    entry = AuditEntry.objects.filter(action="version.update", object_id=str(candidate.pk)).first()
    html = client.get(f"/admin/registry/auditentry/{entry.pk}/change/").content.decode()
    assert "<table class='changes'>" in html and "<tr class='differs'><th>licence_concluded" in html
    assert f"/admin/registry/modelversion/{candidate.pk}/change/" in html


def test_compare_defaults_to_the_version_in_production(client, officer, released):
    _production, candidate = released
    client.force_login(officer)
    page = client.get(f"/admin/registry/modelversion/{candidate.pk}/compare/")
    sections = {section["title"]: section["rows"] for section in page.context["sections"]}
    rows = {row.label: row for row in sections["Version"]}
    assert rows["parameters"].left == "1,000" and rows["parameters"].right == "1,500"
    assert rows["parameters"].delta == "+500"
    assert rows["stage"].differs and not rows["risk tier"].differs
    other = client.get(
        f"/admin/registry/modelversion/{candidate.pk}/compare/", {"with": "acme/nothing@v9"}
    )
    assert "No version &#x27;acme/nothing@v9&#x27;" in other.content.decode()


def test_every_admin_list_exports_csv(client, officer, released, make_dataset_version):
    """The export action is offered by every registered admin and writes the list's columns."""
    client.force_login(officer)
    make_dataset_version()
    exported = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        url = f"/admin/{opts.app_label}/{opts.model_name}/"
        rows = list(model._default_manager.values_list("pk", flat=True)[:3])
        if not rows:
            continue  # Django's actions need a selected row
        response = client.post(
            url,
            {"action": "export_csv", "_selected_action": rows, "select_across": "1", "index": "0"},
        )
        if not model_admin.has_view_or_change_permission(response.wsgi_request):
            continue
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/csv"), url
        table = list(csv.reader(io.StringIO(response.content.decode())))
        assert table[0][0] == "id"
        assert len(table) - 1 == model_admin.get_queryset(response.wsgi_request).count(), url
        exported.append(url)
    # Teams, models, versions, datasets, decisions, approvals, the audit log, policies...
    assert len(exported) >= 10, exported
    versions = client.post(
        "/admin/registry/modelversion/",
        {"action": "export_csv", "select_across": "1", "index": "0", "_selected_action": [1]},
    )
    table = list(csv.reader(io.StringIO(versions.content.decode())))
    assert table[0][:3] == ["id", "model version", "stage"]
    assert {row[1] for row in table[1:]} == {"acme/intent@v1", "acme/intent@v2"}


def test_evidence_pack_has_the_verdict_on_page_one_and_a_verified_chain(client, officer, released):
    _, candidate = released
    audit_seal()  # what runs after each commit, which a test's rolled-back transaction skips
    client.force_login(officer)
    response = client.get(f"/admin/registry/modelversion/{candidate.pk}/evidence/")
    assert response["Content-Type"] == "application/zip"
    pack = zipfile.ZipFile(io.BytesIO(response.content))
    names = {name.split("/", 1)[1] for name in pack.namelist()}
    assert {
        "report.pdf",
        "audit-entries.csv",
        "audit-chain-verification.txt",
        "spdx-3.0.json",
        "model-card.md",
    } <= names
    stem = pack.namelist()[0].split("/")[0]
    assert stem == "acme_intent-v2-evidence"
    page_one = PdfReader(io.BytesIO(pack.read(f"{stem}/report.pdf"))).pages[0].extract_text()
    assert "Verdict for production" in page_one and "FAIL" in page_one
    assert "missing known limitations" in page_one
    verification = pack.read(f"{stem}/audit-chain-verification.txt").decode()
    assert "intact" in verification and "0 not sealed" in verification
    assert "Audit chain: intact" in page_one
    audit = list(csv.reader(io.StringIO(pack.read(f"{stem}/audit-entries.csv").decode())))
    assert (
        len(audit) - 1
        == AuditEntry.objects.filter(
            object_type="registry.modelversion", object_id=str(candidate.pk)
        ).count()
    )
    # A tampered chain is reported as broken in the pack.
    AuditEntry.objects.filter(pk=AuditEntry.objects.order_by("seq").first().pk).update(
        actor_name="mallory"
    )
    again = zipfile.ZipFile(
        io.BytesIO(client.get(f"/admin/registry/modelversion/{candidate.pk}/evidence/").content)
    )
    assert "BROKEN at entry" in again.read(f"{stem}/audit-chain-verification.txt").decode()


@pytest.mark.parametrize("page", ["change/", "history/", "compare/", "governance/"])
def test_version_pages_keep_constant_query_counts(client, officer, released, make_version, page):
    _production, candidate = released

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/admin/registry/modelversion/{candidate.pk}/{page}")
        assert response.status_code == 200
        return len(captured)

    client.force_login(officer)
    before = count()
    for _ in range(5):
        make_version(candidate.model, risk_tier="limited")
        services.version_promote(actor=officer, version=candidate, stage="production")
        services.approval_record(actor=officer, version=candidate, stage="staging")
    assert count() == before


@pytest.mark.parametrize("listed", ["registry/modelversion", "registry/auditentry"])
def test_csv_export_keeps_a_constant_query_count(client, officer, released, make_version, listed):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                f"/admin/{listed}/",
                {
                    "action": "export_csv",
                    "select_across": "1",
                    "index": "0",
                    "_selected_action": [1],
                },
            )
        assert response.status_code == 200
        return len(captured)

    client.force_login(officer)
    before = count()
    for _ in range(5):
        make_version(released[0].model, risk_tier="limited")
    assert count() == before
