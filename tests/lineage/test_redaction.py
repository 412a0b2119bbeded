"""Redaction in lineage answers: what the caller cannot see is a counted placeholder, never a
name, digest, licence, dataset or hold reason; compliance staff see everything."""

import json

import pytest

from lineage import selectors, services
from lineage.picture import build_picture
from lineage.services import DatasetUse, ParentSpec

pytestmark = pytest.mark.django_db

SECRET_REASON = "globex legal: do not ship, see ticket LEGAL-77"


@pytest.fixture
def shared_family(
    base, make_version_of, outsider, other_team, make_dataset_version, compliance_user, derive
):
    """globex's private fine-tune of the shared base, trained on globex's private NC data and
    held with a reason; and acme's version derived from it (recorded by compliance)."""
    secret_data = make_dataset_version(
        "globex/private-tickets",
        actor=outsider,
        owner=other_team,
        licence_declared="CC-BY-NC-4.0",
    )
    private = make_version_of("globex/private-tune")
    services.edges_create(actor=outsider, child=private, parents=[ParentSpec(base, "finetune")])
    services.training_run_record(
        actor=outsider,
        version=private,
        method="full_finetune",
        hyperparameters={"learning_rate": 1e-5},
        datasets=[DatasetUse(secret_data, "train")],
    )
    hold = services.hold_place(
        actor=compliance_user, version=private, reason=SECRET_REASON, category="legal"
    )
    ours = derive()
    services.edge_create(actor=compliance_user, child=ours, parent=private, relation="adapter")
    return {"private": private, "data": secret_data, "hold": hold, "ours": ours}


def secrets_of(family) -> list[str]:
    private, data = family["private"], family["data"]
    return [
        "globex/private-tune",
        private.artefact_digest,
        "globex/private-tickets",
        data.sha256,
        "CC-BY-NC-4.0",
        SECRET_REASON,
        "LEGAL-77",
        "mallory",  # who trained it
        f'"v{private.pk}"',  # its node id
    ]


def test_a_user_in_no_team_sees_placeholders_only(api_for, make_user, base, shared_family):
    nobody = make_user("nobody")
    response = api_for(nobody).get(f"/api/v1/versions/{base.pk}/lineage/")
    assert response.status_code == 200
    text = response.content.decode()
    for secret in secrets_of(shared_family):
        assert secret not in text, secret
    graph = response.json()
    # globex's tune and acme's version (both private to others), and globex's dataset.
    assert graph["hidden"] == {
        "versions": 2,
        "datasets": 1,
        "summary": "2 versions and 1 dataset version you cannot see",
    }
    placeholders = [node for node in graph["nodes"] if node["hidden"]]
    assert len(placeholders) == 3
    assert all(node["id"].startswith("hidden-") for node in placeholders)
    (hold,) = graph["holds"]
    assert hold["reason"] is None and hold["placed_by"] is None and hold["on"] is None


def test_inherited_hold_from_a_hidden_version_gives_no_reason(api_for, engineer, shared_family):
    ours = shared_family["ours"]
    body = api_for(engineer).get(f"/api/v1/versions/{ours.pk}/holds/").json()
    assert body["held"] is True
    (hold,) = body["holds"]
    assert hold["inherited"] is True
    assert json.dumps(hold, default=str).count("null") >= 6
    for secret in secrets_of(shared_family):
        assert secret not in json.dumps(body, default=str), secret


def test_path_through_a_hidden_version_names_none_of_it(api_for, engineer, base, shared_family):
    ours = shared_family["ours"]
    response = api_for(engineer).get(f"/api/v1/versions/{ours.pk}/path/", {"to": str(base.pk)})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["hidden"]["versions"] == 1
    assert [version["ref"] is None for version in body["versions"]] == [False, True, False]
    for secret in secrets_of(shared_family):
        assert secret not in response.content.decode(), secret


def test_compliance_sees_everything(api_for, compliance_user, base, shared_family):
    response = api_for(compliance_user).get(f"/api/v1/versions/{base.pk}/lineage/")
    graph = response.json()
    assert graph["hidden"]["versions"] == graph["hidden"]["datasets"] == 0
    text = response.content.decode()
    for secret in (SECRET_REASON, "globex/private-tickets", shared_family["data"].sha256):
        assert secret in text


def picture_text(user, version) -> str:
    graph = selectors.lineage_graph(user, version)
    picture = build_picture(graph, version_url=lambda pk: f"/v/{pk}")
    return " ".join(f"{node.title} {node.subtitle} {node.hold_note}" for node in picture.nodes)


def test_the_picture_hides_the_same_from_engineers_and_shows_it_to_compliance(
    engineer, compliance_user, shared_family
):
    ours = shared_family["ours"]
    text = picture_text(engineer, ours)
    assert "held through a version you cannot see" in text and "hidden dataset" in text
    for secret in (SECRET_REASON, "globex/private-tickets", "globex/private-tune"):
        assert secret not in text
    full = picture_text(compliance_user, ours)
    assert SECRET_REASON in full and "globex/private-tickets" in full
