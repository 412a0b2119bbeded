"""Promotion gates, approvals, waivers, the CI gate endpoint and client, webhooks."""

import hashlib
import hmac
import json
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from xml.etree import ElementTree as ET

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from pedigree_client.cli import main as cli_main
from registry import gates, services
from registry.errors import InvalidInput, PermissionRefused
from registry.models import (
    AuditEntry,
    EventDelivery,
    GateDecision,
    ModelVersion,
    WebhookEndpoint,
)
from registry.plugins import GateCheck, plugins
from tests.conftest import digest

pytestmark = pytest.mark.django_db


def gate(api, version, **params):
    return api.get(f"/api/v1/versions/{version.pk}/gate/", {"stage": "production", **params})


def check_of(body, name):
    checks = body["checks"] if "checks" in body else body["results"]
    return next(c for c in checks if c["check"] == name)


def test_gate_answers_every_check_without_writing(api_for, engineer, complete):
    audit_count = AuditEntry.objects.count()
    response = gate(api_for(engineer), complete)
    assert response.status_code == 200
    body = response.json()
    assert body["passed"] is False
    assert body["version"] == str(complete)
    assert body["artefact_digest"] == complete.artefact_digest
    assert body["policy"]["required_checks"] == ["metadata", "approvals"]
    assert check_of(body, "metadata")["passed"] is True
    approvals = check_of(body, "approvals")
    assert approvals["passed"] is False
    assert "0 of 1 required compliance approval" in approvals["reasons"][0]
    assert not GateDecision.objects.exists()
    assert AuditEntry.objects.count() == audit_count


def test_gate_names_missing_metadata(api_for, engineer, make_version, policy):
    bare = make_version(risk_tier="limited")
    body = gate(api_for(engineer), bare).json()
    reasons = check_of(body, "metadata")["reasons"]
    assert any("intended use" in r for r in reasons)
    assert any("licence concluded by compliance" in r for r in reasons)


def test_gate_input_errors_and_visibility(api_for, engineer, outsider, complete):
    bad = api_for(engineer).get(f"/api/v1/versions/{complete.pk}/gate/", {"stage": "moon"})
    assert bad.status_code == 400
    assert "stage" in bad.json()["error"]["fields"]
    assert gate(api_for(outsider), complete).status_code == 404
    assert gate(api_for(None), complete).status_code == 401


def test_engineer_cannot_promote_own_model_without_approval(api_for, engineer, complete):
    response = api_for(engineer).post(
        f"/api/v1/versions/{complete.pk}/promote/", {"stage": "production"}, format="json"
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "gate_failed"
    assert "approvals" in error["message"]
    complete.refresh_from_db()
    assert complete.stage == "development"
    decision = GateDecision.objects.get()
    assert decision.passed is False and decision.artefact_digest == complete.artefact_digest
    assert AuditEntry.objects.filter(action="version.promotion_refused").count() == 1


def test_approval_then_promotion(api_for, engineer, compliance_user, complete):
    approval = api_for(compliance_user).post(
        f"/api/v1/versions/{complete.pk}/approvals/",
        {"stage": "production", "comment": "evidence reviewed"},
        format="json",
    )
    assert approval.status_code == 201, approval.json()
    assert approval.json()["artefact_digest"] == complete.artefact_digest
    response = api_for(engineer).post(
        f"/api/v1/versions/{complete.pk}/promote/",
        {"stage": "production", "justification": "Q4 release"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["passed"] is True
    complete.refresh_from_db()
    assert complete.stage == "production"
    assert AuditEntry.objects.filter(action="version.promote").count() == 1
    history = api_for(engineer).get(f"/api/v1/versions/{complete.pk}/decisions/").json()
    assert [d["passed"] for d in history] == [True]
    assert check_of(history[0], "approvals")["evidence"]["approvals"][0]["approver"] == "carol"


def test_separation_of_duties(api_for, make_user, team, make_model, make_version, engineer, policy):
    both = make_user("dave", teams=[team], compliance=True)
    version = make_version(make_model(actor=both), actor=both)
    response = api_for(both).post(
        f"/api/v1/versions/{version.pk}/approvals/", {"stage": "production"}, format="json"
    )
    assert response.status_code == 403
    assert "separation of duties" in response.json()["error"]["message"]
    refused = api_for(engineer).post(
        f"/api/v1/versions/{version.pk}/approvals/", {"stage": "production"}, format="json"
    )
    assert refused.status_code == 403


def test_approvals_are_bound_to_the_digest_and_expire(compliance_user, complete, policy):
    services.approval_record(actor=compliance_user, version=complete, stage="production")
    evaluate = gates.gate_evaluate
    assert check_of(evaluate(version=complete, stage="production").to_dict(), "approvals")["passed"]
    ModelVersion.objects.filter(pk=complete.pk).update(artefact_digest=digest("new weights"))
    complete.refresh_from_db()
    assert not evaluate(version=complete, stage="production").passed
    services.approval_record(actor=compliance_user, version=complete, stage="production")
    assert evaluate(version=complete, stage="production").passed
    complete.approvals.update(
        created_at=timezone.now() - timedelta(days=200),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert not evaluate(version=complete, stage="production").passed


def test_a_rejection_blocks(compliance_user, complete, make_user):
    services.approval_record(actor=compliance_user, version=complete, stage="production")
    other = make_user("erin", compliance=True)
    with pytest.raises(InvalidInput, match="Say why"):
        services.approval_record(
            actor=other, version=complete, stage="production", decision="reject"
        )
    services.approval_record(
        actor=other, version=complete, stage="production", decision="reject", comment="bias"
    )
    result = check_of(
        gates.gate_evaluate(version=complete, stage="production").to_dict(), "approvals"
    )
    assert not result["passed"]
    assert "rejected by erin" in result["reasons"][0]


def test_waiver_turns_a_failure_into_a_pass_until_it_expires(
    api_for, compliance_user, engineer, complete, policy, flaky_check
):
    policy.required_checks = ["metadata", "flaky"]
    policy.approvals_required = 0
    policy.save()
    assert not gates.gate_evaluate(version=complete, stage="production").passed
    url = f"/api/v1/versions/{complete.pk}/waivers/"
    expires = (timezone.now() + timedelta(days=7)).isoformat()
    assert (
        api_for(engineer)
        .post(url, {"check": "flaky", "reason": "x", "expires_at": expires}, format="json")
        .status_code
        == 403
    )
    no_reason = api_for(compliance_user).post(
        url, {"check": "flaky", "reason": "", "expires_at": expires}, format="json"
    )
    assert no_reason.status_code == 400
    past = api_for(compliance_user).post(
        url,
        {"check": "flaky", "reason": "r", "expires_at": "2020-01-01T00:00:00Z"},
        format="json",
    )
    assert past.status_code == 400 and "future" in past.json()["error"]["message"]
    unknown = api_for(compliance_user).post(
        url, {"check": "nope", "reason": "r", "expires_at": expires}, format="json"
    )
    assert unknown.status_code == 400
    granted = api_for(compliance_user).post(
        url, {"check": "flaky", "reason": "vendor fix due", "expires_at": expires}, format="json"
    )
    assert granted.status_code == 201
    evaluation = gates.gate_evaluate(version=complete, stage="production")
    assert evaluation.passed
    assert check_of(evaluation.to_dict(), "flaky")["waiver"]["reason"] == "vendor fix due"
    complete.waivers.update(
        created_at=timezone.now() - timedelta(days=8),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert not gates.gate_evaluate(version=complete, stage="production").passed


def test_a_crashing_check_fails_closed(complete, policy, monkeypatch):
    def broken(context):
        raise RuntimeError("boom")

    checks = [*plugins.contributions(GateCheck), GateCheck("broken", broken)]
    monkeypatch.setitem(plugins._contributions, GateCheck, checks)
    policy.required_checks = ["broken"]
    policy.approvals_required = 0
    policy.save()
    result = check_of(gates.gate_evaluate(version=complete, stage="production").to_dict(), "broken")
    assert result["passed"] is False and "could not run: boom" in result["reasons"][0]


def test_unacceptable_never_reaches_production(compliance_user, make_version):
    version = make_version(risk_tier="unacceptable")
    evaluation = gates.gate_evaluate(version=version, stage="production")
    assert not evaluation.passed
    assert "may never enter production" in check_of(evaluation.to_dict(), "policy")["reasons"][0]


def test_one_production_version_per_model(
    engineer, compliance_user, make_model, make_version, policy, conclude
):
    model = make_model()
    fields = {"risk_tier": "limited", "intended_use": "x", "known_limitations": "y"}
    first = conclude(make_version(model, **fields))
    second = conclude(make_version(model, **fields))
    for version in (first, second):
        services.approval_record(actor=compliance_user, version=version, stage="production")
    assert services.version_promote(actor=engineer, version=first, stage="production").passed
    refused = services.version_promote(actor=engineer, version=second, stage="production")
    assert not refused.passed
    assert (
        "already in production"
        in check_of({"results": refused.results}, "single_production")["reasons"][0]
    )
    replaced = services.version_promote(
        actor=engineer, version=second, stage="production", replace_production=True
    )
    assert replaced.passed
    first.refresh_from_db()
    assert first.stage == "archived"


def test_backward_moves_are_refused(engineer, compliance_user, complete, policy):
    services.approval_record(actor=compliance_user, version=complete, stage="production")
    services.version_promote(actor=engineer, version=complete, stage="production")
    complete.refresh_from_db()
    decision = services.version_promote(actor=engineer, version=complete, stage="staging")
    assert not decision.passed
    assert "forward only" in check_of({"results": decision.results}, "transition")["reasons"][0]


def test_asking_for_the_current_stage_again_is_a_harmless_success(
    api_for, engineer, complete, policy
):
    """A re-run release job: the second promote changes nothing and records no refusal."""
    first = services.version_promote(actor=engineer, version=complete, stage="staging")
    complete.refresh_from_db()
    again = services.version_promote(actor=engineer, version=complete, stage="staging")
    assert again.passed and again.pk == first.pk
    assert GateDecision.objects.filter(version=complete).count() == 1
    assert not AuditEntry.objects.filter(action="version.promotion_refused").exists()
    body = gate(api_for(engineer), complete, stage="staging").json()
    assert body["passed"] is True
    assert check_of(body, "transition")["evidence"] == {"already_in_stage": True}
    response = api_for(engineer).post(
        f"/api/v1/versions/{complete.pk}/promote/", {"stage": "staging"}, format="json"
    )
    assert response.status_code == 200


def test_only_owning_team_or_compliance_promotes(outsider, complete):
    with pytest.raises(PermissionRefused):
        services.version_promote(actor=outsider, version=complete, stage="staging")


def test_policy_changes_are_validated_versioned_and_audited(compliance_user, engineer, policy):
    with pytest.raises(PermissionRefused):
        services.stage_policy_update(actor=engineer, policy=policy, changes={"allowed": False})
    with pytest.raises(InvalidInput, match="Unknown check"):
        services.stage_policy_update(
            actor=compliance_user, policy=policy, changes={"required_checks": ["astrology"]}
        )
    revision = policy.revision
    services.stage_policy_update(
        actor=compliance_user, policy=policy, changes={"approvals_required": 2}
    )
    assert policy.revision == revision + 1
    assert AuditEntry.objects.filter(action="policy.update").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_promotions_exactly_one_wins(
    make_model, make_version, engineer, policy, conclude
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (SQLite serialises writers itself)")
    policy.required_checks = ["metadata"]
    policy.approvals_required = 0
    policy.save()
    model = make_model()
    fields = {"risk_tier": "limited", "intended_use": "x", "known_limitations": "y"}
    versions = [conclude(make_version(model, **fields)) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes = []

    def promote(version):
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            outcomes.append(
                services.version_promote(actor=engineer, version=version, stage="production").passed
            )
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False, True]
    assert ModelVersion.objects.filter(model=model, stage="production").count() == 1


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.django_db(transaction=True)
def test_events_are_delivered_signed(engineer, complete, policy, settings):
    settings.PEDIGREE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]  # the test's own receiver
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.received = []
    try:
        WebhookEndpoint.objects.create(
            name="ci",
            url=f"http://127.0.0.1:{server.server_port}/hook",
            secret="s3cret",
            events=["version.promotion_refused"],
        )
        services.version_promote(actor=engineer, version=complete, stage="production")
    finally:
        server.shutdown()
    assert len(_Receiver.received) == 1
    headers, body = _Receiver.received[0]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Pedigree-Signature"] == expected
    payload = json.loads(body)
    assert payload["event"] == "version.promotion_refused"
    assert payload["data"]["failed_checks"] == ["approvals"]
    assert EventDelivery.objects.get().status == "delivered"


@pytest.mark.django_db(transaction=True)
def test_cli_gate_exit_codes_junit_and_json(
    live_server, monkeypatch, tmp_path, capsys, engineer, compliance_user, complete, policy
):
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=engineer).key)
    junit = tmp_path / "gate.xml"
    ref = str(complete)
    assert cli_main(["gate", ref, "--stage", "production", "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL: {ref} → production")
    assert "[FAIL] approvals" in out
    suite = ET.parse(junit).getroot()  # noqa: S314 (our own output)
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert {"metadata", "approvals", "transition"} <= set(cases)
    assert cases["approvals"].find("failure") is not None
    assert cases["metadata"].find("failure") is None
    assert suite.get("failures") == "1"

    services.approval_record(actor=compliance_user, version=complete, stage="production")
    assert cli_main(["gate", ref, "--stage", "production", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True
    assert cli_main(["gate", "acme/nothing@v1", "--stage", "production"]) == 2
    with pytest.raises(SystemExit) as usage:
        cli_main(["gate", ref, "--stage", "moon"])
    assert usage.value.code == 2
    assert cli_main(["promote", ref, "--stage", "production"]) == 0
    complete.refresh_from_db()
    assert complete.stage == "production"
    # A re-run release job: asking again for where it already is succeeds and records nothing.
    decisions = GateDecision.objects.count()
    assert cli_main(["gate", ref, "--stage", "production"]) == 0
    assert cli_main(["promote", ref, "--stage", "production"]) == 0
    assert GateDecision.objects.count() == decisions


@pytest.mark.django_db(transaction=True)
def test_cli_gate_marks_informational_checks_and_links_the_governance_page(
    live_server, monkeypatch, tmp_path, capsys, engineer, complete, policy
):
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=engineer).key)
    monkeypatch.delenv("NO_COLOR", raising=False)
    link = f"{live_server.url}/admin/registry/modelversion/{complete.pk}/governance/"
    ref, junit = str(complete), tmp_path / "report.xml"

    assert cli_main(["gate", ref, "--stage", "production", "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # not a terminal: no colour
    assert "  [ok  ] transition\n" in out
    informational = [line for line in out.splitlines() if "(informational" in line]
    assert informational, out
    assert all("not required for production by the stage policy" in line for line in informational)
    assert out.rstrip().endswith(f"Governance page: {link}")
    suite = ET.parse(junit).getroot()  # noqa: S314 (our own output)
    assert suite.find("properties/property[@name='governance_url']").get("value") == link
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert link in cases["approvals"].find("failure").text
    skipped = [case.find("skipped") for case in cases.values() if case.find("skipped") is not None]
    assert len(skipped) == int(suite.get("skipped")) == len(informational)
    assert all(s.get("message").startswith("informational, ") for s in skipped)

    assert cli_main(["gate", ref, "--stage", "production", "--json", "-"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["governance_url"] == link
    assert answer["passed"] is False

    # On a terminal, as in a developer's shell: red and green, unless NO_COLOR is set.
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli_main(["gate", ref, "--stage", "production"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"\x1b[31mFAIL\x1b[0m: {ref} → production")
    assert "[\x1b[32mok  \x1b[0m] transition" in out
    assert "[\x1b[31mFAIL\x1b[0m] approvals" in out
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli_main(["gate", ref, "--stage", "production"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL: {ref} → production")
    assert "\x1b[" not in out
