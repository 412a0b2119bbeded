"""Licensing endpoints: the check, obligations, the catalogue, the policy and waivers."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from licensing.models import LicenceTerm, LicenceWaiver
from registry.models import AuditEntry


def url(version, what: str) -> str:
    return f"/api/v1/versions/{version.pk}/{what}/"


def test_licence_check_endpoint(api_for, engineer, minilm, derive, dataset):
    tuned = derive("acme/support-intent", minilm, datasets=[dataset("acme/r", "CC-BY-NC-4.0")])
    api = api_for(engineer)
    failing = api.get(url(tuned, "licence-check"), {"use": "commercial", "stage": "production"})
    assert failing.status_code == 200
    body = failing.json()
    assert body["passed"] is False
    assert body["policy"]["name"] == "default" and body["policy"]["revision"] >= 1
    violation = body["violations"][0]
    assert {
        "rule": "non-commercial-use",
        "severity": "error",
        "licence": "CC-BY-NC-4.0",
        "source": "acme/r@v1",
        "clause": "CC BY-NC 4.0 §2(a)(1)",
    }.items() <= violation.items()
    assert violation["path"].endswith("acme/r@v1 → CC-BY-NC-4.0 → CC BY-NC 4.0 §2(a)(1)")
    assert violation["how_to_fix"]
    assert [step["kind"] for step in violation["steps"]][-3:] == ["dataset", "licence", "clause"]
    passing = api.get(url(tuned, "licence-check"), {"use": "research"}).json()
    assert passing["passed"] is True and passing["stage"] == "production"


def test_licence_check_refuses_a_bad_context(api_for, engineer, minilm):
    response = api_for(engineer).get(url(minilm, "licence-check"), {"use": "personal"})
    assert response.status_code == 400
    assert "use" in response.json()["error"]["fields"]


def test_versions_of_other_teams_are_not_found(api_for, outsider, derive, minilm):
    private = derive("acme/private", minilm)
    api = api_for(outsider)
    for what in ("licence-check", "obligations", "export/spdx-2.3", "export/model-card"):
        assert api.get(url(private, what)).status_code == 404
    assert api_for().get(url(private, "licence-check")).status_code == 401


def _chain(minilm, derive, dataset, depth: int):
    version = derive("acme/chain-0", minilm, datasets=[dataset("acme/chain-data", "CC-BY-4.0")])
    for level in range(1, depth):
        version = derive(f"acme/chain-{level}", version, "finetune")
    return version


def test_licence_check_query_count_does_not_grow_with_lineage_depth(
    api_for, engineer, minilm, derive, dataset, django_assert_max_num_queries
):
    shallow = _chain(minilm, derive, dataset, 1)
    deep = derive("acme/deep-0", minilm)
    for level in range(1, 12):
        deep = derive(f"acme/deep-{level}", deep, "quantized" if level % 2 else "finetune")
    api = api_for(engineer)
    counts = []
    for version in (shallow, deep):
        api.get(url(version, "licence-check"))  # warm the token and group caches alike
        with CaptureQueriesContext(connection) as queries:
            assert api.get(url(version, "licence-check")).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(12):
        api.get(url(deep, "licence-check"))
    with django_assert_max_num_queries(12):
        api.get(url(deep, "obligations"))


def test_obligations_endpoint(api_for, engineer, upstream, derive, dataset):
    llama = upstream("meta-llama/Llama-3.1-8B", "LicenseRef-Llama-3.1")
    adapter = derive(
        "acme/Llama-support", llama, "adapter", datasets=[dataset("acme/r", "CC-BY-4.0")]
    )
    body = api_for(engineer).get(url(adapter, "obligations")).json()
    assert body["licence"] == {
        "expression": "Apache-2.0",
        "field": "licence_declared",
        "alternatives": [["Apache-2.0"]],
    }
    assert [source["kind"] for source in body["sources"]] == ["self", "ancestor", "dataset"]
    naming = next(o for o in body["obligations"] if o["type"] == "naming_prefix")
    assert naming["value"] == "Llama"
    assert naming["licence"] == "LicenseRef-Llama-3.1"
    assert naming["path"] == (
        f"{adapter} —adapter→ meta-llama/Llama-3.1-8B@main → LicenseRef-Llama-3.1 → "
        "Llama 3.1 Community License §1.b.i"
    )
    assert body["licences"]["LicenseRef-Llama-3.1"]["category"] == "use_restricted"


def test_licence_catalogue_endpoints(api_for, engineer, licence_tables):
    api = api_for(engineer)
    refs = api.get("/api/v1/licences/", {"licence_ref": "true", "limit": 200}).json()
    ids = {item["spdx_id"] for item in refs["results"]}
    assert {"LicenseRef-Llama-3.1", "LicenseRef-Gemma", "LicenseRef-Unknown"} <= ids
    assert not any(i.startswith("LicenseRef-scancode") for i in ids)
    nc = api.get("/api/v1/licences/", {"category": "non_commercial", "curated": "true"}).json()
    assert "CC-BY-NC-4.0" in {item["spdx_id"] for item in nc["results"]}
    naming = api.get("/api/v1/licences/", {"term_type": "naming_prefix"}).json()
    assert {item["spdx_id"] for item in naming["results"]} >= {"LicenseRef-Llama-3.1"}
    assert api.get("/api/v1/licences/", {"hub_id": "llama3.1"}).json()["count"] == 1
    detail = api.get("/api/v1/licences/LicenseRef-Llama-3.1/").json()
    assert detail["hub_ids"] == ["llama3.1"]
    assert detail["terms"][0]["clause"].startswith("Llama 3.1 Community License")
    assert api.get("/api/v1/licences/apache-2.0/").json()["spdx_id"] == "Apache-2.0"
    missing = api.get("/api/v1/licences/LicenseRef-Nope/")
    assert missing.status_code == 404
    assert "No licence 'LicenseRef-Nope' in the catalogue" in missing.json()["error"]["message"]
    bad_filter = api.get("/api/v1/licences/", {"category": "open"})
    assert bad_filter.status_code == 400


def test_hub_licence_mapping_flags_ambiguous_ids(api_for, engineer, licence_tables):
    mapping = {
        item["hub_id"]: item for item in api_for(engineer).get("/api/v1/hub-licences/").json()
    }
    assert len(mapping) == 81
    assert mapping["llama3.1"] == {
        "hub_id": "llama3.1",
        "licence": "LicenseRef-Llama-3.1",
        "review_required": False,
        "reason": "",
    }
    for ambiguous in ("gpl", "bsd", "cc", "openrail", "other", "unknown"):
        assert mapping[ambiguous]["review_required"], ambiguous
        assert mapping[ambiguous]["reason"]


def test_licence_policy_endpoint_and_past_revisions(
    api_for, engineer, compliance_user, licence_tables
):
    from licensing import services

    api = api_for(engineer)
    policy = api.get("/api/v1/licence-policy/").json()
    revision = policy["revision"]
    names = [rule["name"] for rule in policy["rules"]]
    assert names[0] == "non-commercial-use" and names[-1] == "catch-all"
    services.licence_rule_create(
        actor=compliance_user,
        name="gemma-review",
        condition="licence",
        licence="LicenseRef-Gemma",
        severity="warning",
        message="{licence} needs a legal read.",
        how_to_fix="Ask legal.",
    )
    now = api.get("/api/v1/licence-policy/").json()
    assert now["revision"] == revision + 1
    assert now["rules"][-1]["licence"] == "LicenseRef-Gemma"
    then = api.get("/api/v1/licence-policy/", {"revision": revision}).json()
    assert then["revision"] == revision
    assert "gemma-review" not in [rule["name"] for rule in then["rules"]]
    assert api.get("/api/v1/licence-policy/", {"revision": 999}).status_code == 404


def test_waivers_through_the_api(
    api_for, engineer, compliance_user, approver, outsider, minilm, derive, dataset
):
    tuned = derive("acme/support-intent", minilm, datasets=[dataset("acme/r", "CC-BY-NC-4.0")])
    expires = (timezone.now() + timedelta(days=14)).isoformat()
    payload = {
        "version": f"{tuned}",
        "rule": "non-commercial-use",
        "licence": "CC-BY-NC-4.0",
        "reason": "Commercial licence bought (PO 1234).",
        "approver": "dana",
        "expires_at": expires,
    }
    refused = api_for(engineer).post("/api/v1/licence-waivers/", payload, format="json")
    assert refused.status_code == 403
    no_reason = api_for(compliance_user).post(
        "/api/v1/licence-waivers/", payload | {"reason": ""}, format="json"
    )
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["error"]["fields"]
    no_expiry = api_for(compliance_user).post(
        "/api/v1/licence-waivers/",
        {k: v for k, v in payload.items() if k != "expires_at"},
        format="json",
    )
    assert no_expiry.status_code == 400 and "expires_at" in no_expiry.json()["error"]["fields"]
    created = api_for(compliance_user).post("/api/v1/licence-waivers/", payload, format="json")
    assert created.status_code == 201, created.json()
    waiver = created.json()
    assert waiver["approver"] == "dana" and waiver["granted_by"] == "carol"
    assert waiver["artefact_digest"] == tuned.artefact_digest
    assert AuditEntry.objects.filter(action="licence_waiver.grant").exists()
    assert api_for(engineer).get(url(tuned, "licence-check")).json()["passed"] is True
    assert api_for(engineer).get("/api/v1/licence-waivers/").json()["count"] == 1
    assert api_for(outsider).get("/api/v1/licence-waivers/").json()["count"] == 0
    revoked = api_for(compliance_user).post(f"/api/v1/licence-waivers/{waiver['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "carol"
    assert api_for(engineer).get(url(tuned, "licence-check")).json()["passed"] is False
    assert LicenceWaiver.objects.get().revoked_at is not None


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("export/spdx-2.3", "application/spdx+json"),
        ("export/spdx-3.0", "application/ld+json"),
        ("export/model-card", "text/markdown; charset=utf-8"),
    ],
)
def test_export_endpoints(api_for, engineer, minilm, derive, path, content_type):
    tuned = derive("acme/support-intent", minilm)
    response = api_for(engineer).get(url(tuned, path))
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert "acme_support-intent" in response["Content-Disposition"]
    assert b"acme/support-intent" in response.content


def test_licensing_routes_take_a_ref(api_for, engineer, outsider, derive, minilm):
    tuned = derive("acme/support-intent", minilm, version="v1")
    api = api_for(engineer)
    for ref in (str(tuned), "acme%2Fsupport-intent%40v1"):
        for what in ("licence-check", "obligations"):
            response = api.get(f"/api/v1/versions/{ref}/{what}/")
            assert response.status_code == 200, (ref, what)
            assert response.json() == api.get(url(tuned, what)).json()
        for what in ("export/spdx-2.3", "export/spdx-3.0", "export/model-card"):
            assert api.get(f"/api/v1/versions/{ref}/{what}/").status_code == 200, (ref, what)
    hidden = api_for(outsider).get(f"/api/v1/versions/{tuned}/obligations/")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["message"] == "Not found, or you do not have access to it."


def test_user_threshold_is_an_attestation_the_production_approval_records(
    api_for, engineer, compliance_user, upstream, derive
):
    llama = upstream("meta-llama/Llama-3.1-8B", "LicenseRef-Llama-3.1")
    tuned = derive("acme/Llama-3.1-support", llama, "adapter", licence="LicenseRef-Llama-3.1")
    attestation = "LicenseRef-Llama-3.1 user_threshold"
    context = {"use": "commercial", "stage": "production"}
    # The catalogue marks the term that hinges on a fact only the releasing team knows.
    terms = api_for(engineer).get("/api/v1/licences/LicenseRef-Llama-3.1/").json()["terms"]
    assert [t["type"] for t in terms if t["attestation"]] == ["user_threshold"]

    def threshold_findings():
        body = api_for(engineer).get(url(tuned, "licence-check"), context).json()
        return [v for v in body["violations"] if v["rule"].startswith("user-threshold")], body

    [finding], body = threshold_findings()
    assert finding["rule"] == "user-threshold-attestation" and finding["severity"] == "error"
    assert f"'{attestation}'" in finding["message"] and "700000000" in finding["message"]
    assert "attestations" in finding["how_to_fix"]
    assert body["passed"] is False
    # Below production it stays a hint.
    staging = api_for(engineer).get(url(tuned, "licence-check"), context | {"stage": "staging"})
    assert {v["rule"]: v["severity"] for v in staging.json()["violations"]}["user-threshold"] == (
        "hint"
    )

    approvals = f"/api/v1/versions/{tuned.pk}/approvals/"
    wrong_stage = api_for(compliance_user).post(
        approvals, {"stage": "staging", "attestations": [attestation]}, format="json"
    )
    assert wrong_stage.status_code == 400
    assert "attestations" in wrong_stage.json()["error"]["fields"]
    assert not tuned.approvals.exists()
    # An approval without the attestation does not answer it.
    plain = api_for(compliance_user).post(approvals, {"stage": "production"}, format="json")
    assert plain.status_code == 201 and plain.json()["attestations"] == []
    assert len(threshold_findings()[0]) == 1
    created = api_for(compliance_user).post(
        approvals, {"stage": "production", "attestations": [attestation]}, format="json"
    )
    assert created.status_code == 201, created.json()
    assert created.json()["attestations"] == [attestation]
    assert threshold_findings()[0] == []
    # Only a term the catalogue marks can be answered by an attestation.
    LicenceTerm.objects.filter(type="user_threshold").update(attestation=False)
    assert len(threshold_findings()[0]) == 1
    LicenceTerm.objects.filter(type="user_threshold").update(attestation=True)
    entry = AuditEntry.objects.filter(action="approval.approve").order_by("-id").first()
    assert entry.after["attestations"] == [attestation]
    # It counts only for exactly these weights: new weights need a new attestation.
    tuned.approvals.update(artefact_digest="0" * 64)
    assert len(threshold_findings()[0]) == 1
