"""An upstream model's own training data: the `datasets:` of its card become reference dataset
versions (no files) linked as its training data, licensed by the dataset's card when the local
Hugging Face cache holds it, else NOASSERTION; their terms reach descendants as the licence
policy says (a hint by default). Imported through the endpoint users use."""

# The snapshot fixtures are imported from the lineage tests; pytest passes them by name.
# ruff: noqa: F811

import json
import os
from pathlib import Path

import pytest
from spdx_python_model import v3_0_1 as spdx
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from evaluators.models import EvaluationSuite
from evaluators.services import suite_create
from licensing.exports import version_export
from licensing.selectors import licence_check
from licensing.services import licence_rule_create
from lineage import services as lineage_services
from lineage.models import UpstreamTrainingData
from lineage.picture import build_picture
from lineage.selectors import lineage_graph
from lineage.services import DatasetUse, ParentSpec
from registry.errors import InvalidInput
from registry.models import AuditEntry, Dataset, DatasetVersion, ModelVersion
from tests.conftest import digest
from tests.evaluators.conftest import SUITE_DEFAULTS
from tests.lineage.test_hub_lineage import (  # noqa: F401  (fixtures)
    IMPORTS,
    full_model,
    hf_cache,
    no_network,
    roots,
)
from tests.registry.test_artefacts import write

pytestmark = pytest.mark.django_db

# Facts of real public cards: a model trained on a non-commercial dataset and one whose card
# the cache does not hold. (e.g. MS MARCO's terms are non-commercial research only.)
REPO = "acme-labs/ticket-encoder"
SHA = "5" * 40
TICKETS = "acme/tickets"
TICKETS_SHA = "6" * 40
FAQ = "acme/faq"
CARD = f"license: apache-2.0\ndatasets:\n- {TICKETS}\n- {FAQ}\n"


def dataset_card(cache: Path, hub_id: str, card: str, *, sha: str = TICKETS_SHA) -> Path:
    """A dataset card laid out in the HF cache as `hf download --repo-type dataset` leaves it."""
    repo = cache / f"datasets--{hub_id.replace('/', '--')}"
    write(repo / "refs" / "main", sha.encode())
    content = f"---\n{card}---\n# Dataset\n".encode()
    blob = write(repo / "blobs" / "readme", content)
    link = repo / "snapshots" / sha / "README.md"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    return link


def imported(api_for, user, roots, card=CARD, *, repo_id=REPO, sha=SHA, folder="snap"):
    full_model(roots / folder, card)
    response = api_for(user).post(
        IMPORTS,
        {
            "repo_id": repo_id,
            "revision": sha,
            "snapshot_dir": f"teams/acme/{folder}",
            "team": "acme",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def by_rule(check, rule: str):
    return [v for v in check.violations if v.rule == rule]


def test_card_datasets_become_reference_training_data(api_for, engineer, roots, hf_cache):
    dataset_card(hf_cache, TICKETS, "license: cc-by-nc-4.0\n")

    body = imported(api_for, engineer, roots)

    tickets, faq = body["training_data"]
    assert tickets["hub_id"] == TICKETS and tickets["dataset_version"] == "acme/tickets@hub"
    assert tickets["licence_declared"] == "CC-BY-NC-4.0"
    assert f"card of the Hub dataset {TICKETS} at {TICKETS_SHA[:12]}" in tickets["licence_source"]
    assert faq["licence_declared"] == "NOASSERTION"
    assert "not in the local Hugging Face cache" in faq["licence_source"]
    reference = DatasetVersion.objects.get(dataset__hub_id=TICKETS)
    assert reference.reference and reference.sha256 == "" and reference.size_bytes == 0
    assert reference.uri == f"https://huggingface.co/datasets/{TICKETS}/tree/{TICKETS_SHA}"
    assert (reference.dataset.visibility, reference.dataset.team.slug) == ("internal", "acme")

    api = api_for(engineer)
    version_id = body["version"]["id"]
    shown = api.get(f"/api/v1/versions/{version_id}/training-data/").json()["datasets"]
    assert [(row["ref"], row["declared_by_card"], row["sha256"]) for row in shown] == [
        ("acme/tickets@hub", True, None),
        ("acme/faq@hub", True, None),
    ]
    detail = api.get(f"/api/v1/dataset-versions/{reference.pk}/").json()
    assert detail["reference"] is True and detail["sha256"] == ""
    graph = api.get(f"/api/v1/versions/{version_id}/lineage/").json()
    datasets = [node for node in graph["nodes"] if node["kind"] == "dataset"]
    assert {node["ref"] for node in datasets} == {"acme/tickets@hub", "acme/faq@hub"}
    assert all(node["reference"] for node in datasets)
    assert all(
        edge["declared_by_card"] for edge in graph["edges"] if edge["kind"] == "training_data"
    )
    assert AuditEntry.objects.filter(action="version.upstream_training_data").count() == 1


def test_their_terms_are_a_hint_by_default_and_the_policy_can_raise_them(
    api_for, engineer, team, roots, hf_cache, compliance_user
):
    dataset_card(hf_cache, TICKETS, "license: cc-by-nc-4.0\n")
    upstream = ModelVersion.objects.get(pk=imported(api_for, engineer, roots)["version"]["id"])
    child = lineage_services.registration_create(
        actor=engineer,
        model="acme/ticket-router",
        version="v1",
        artefact_digest=digest("ticket-router"),
        parents=[ParentSpec(upstream, "finetune")],
        training_run={"method": "full_finetune", "hyperparameters": {"learning_rate": 2e-5}},
        create_model={"team": team.slug},
        licence_declared="Apache-2.0",
    )

    check = licence_check(version=child, stage="production", use="commercial")

    hints = by_rule(check, "upstream-training-data")
    assert {(v.severity, v.source.ref, v.term_type) for v in hints} == {
        ("hint", "acme/tickets@hub", "non_commercial"),
        ("hint", "acme/tickets@hub", "attribution"),
        ("hint", "acme/faq@hub", ""),
    }
    nc = next(v for v in hints if v.term_type == "non_commercial")
    assert "acme/ticket-router@v1 —finetune→ acme-labs/ticket-encoder@" in nc.message
    assert "—trained on (train)→ acme/tickets@hub → CC-BY-NC-4.0" in nc.message
    # No rule for data a team trained on fires on them: no error, no missing licence.
    assert not by_rule(check, "non-commercial-use") and not by_rule(check, "missing-licence")
    assert check.passed

    licence_rule_create(
        actor=compliance_user,
        name="upstream-data-non-commercial",
        condition="upstream_training_data",
        term_type="non_commercial",
        severity="error",
        uses=["commercial"],
        message="{source} ({licence}) forbids commercial use ({clause}): {path}.",
        how_to_fix="Use the version for research only, or get a commercial licence.",
    )

    raised = licence_check(version=child, stage="production", use="commercial")
    (error,) = by_rule(raised, "upstream-data-non-commercial")
    assert error.severity == "error" and error.source.ref == "acme/tickets@hub"
    assert not raised.passed
    assert licence_check(version=child, stage="production", use="research").passed


def test_reimport_and_a_dataset_two_models_name_are_one_record(api_for, engineer, roots):
    first = imported(api_for, engineer, roots)
    again = api_for(engineer).post(
        IMPORTS,
        {"repo_id": REPO, "revision": SHA, "snapshot_dir": "teams/acme/snap", "team": "acme"},
        format="json",
    )
    assert again.status_code == 200
    second = imported(
        api_for,
        engineer,
        roots,
        f"license: mit\ndatasets:\n- {TICKETS}\n",
        repo_id="acme-labs/other",
        sha="7" * 40,
        folder="other",
    )

    assert DatasetVersion.objects.filter(dataset__hub_id=TICKETS).count() == 1
    assert Dataset.objects.filter(hub_id=TICKETS).count() == 1
    users = UpstreamTrainingData.objects.filter(dataset_version__dataset__hub_id=TICKETS)
    assert sorted(users.values_list("version_id", flat=True)) == sorted(
        [first["version"]["id"], second["version"]["id"]]
    )
    assert DatasetVersion.objects.count() == 2


def test_a_dataset_card_with_several_licences_binds_them_all(api_for, engineer, roots, hf_cache):
    dataset_card(hf_cache, TICKETS, "license:\n- cc-by-sa-3.0\n- gfdl\n")
    body = imported(api_for, engineer, roots)
    declared = body["training_data"][0]["licence_declared"]
    assert declared.startswith("CC-BY-SA-3.0 AND ")


def test_a_dataset_card_linked_out_of_its_cache_folder_is_not_read(
    api_for, engineer, roots, hf_cache, tmp_path
):
    outside = write(tmp_path / "outside" / "README.md", b"---\nlicense: mit\n---\n")
    link = dataset_card(hf_cache, TICKETS, "license: mit\n")
    link.unlink()
    link.symlink_to(outside)

    body = imported(api_for, engineer, roots)

    assert body["training_data"][0]["licence_declared"] == "NOASSERTION"


def test_exports_show_the_declared_data_without_digests(api_for, engineer, roots, hf_cache):
    dataset_card(hf_cache, TICKETS, "license: cc-by-nc-4.0\n")
    version = ModelVersion.objects.get(pk=imported(api_for, engineer, roots)["version"]["id"])

    document = json.loads(version_export(user=engineer, version=version, format="spdx-2.3"))
    assert validate_full_spdx_document(JsonLikeDictParser().parse(document)) == []
    tickets = next(p for p in document["packages"] if p["name"] == TICKETS)
    assert "checksums" not in tickets or tickets["checksums"] == []
    assert tickets["licenseDeclared"] == "CC-BY-NC-4.0"
    comments = [r.get("comment", "") for r in document["relationships"]]
    assert comments.count("trainedOn (train, declared by the upstream model card)") == 2

    data = json.loads(version_export(user=engineer, version=version, format="spdx-3.0"))
    objects = spdx.SHACLObjectSet()
    spdx.JSONLDDeserializer().deserialize_data(data, objects)
    assert objects.link() == set()
    datasets = {o.name: o for o in objects.foreach_type(spdx.dataset_DatasetPackage)}
    assert set(datasets) == {TICKETS, FAQ}
    assert not datasets[TICKETS].verifiedUsing

    card = version_export(user=engineer, version=version, format="model-card")
    assert f"datasets:\n- {TICKETS}\n- {FAQ}\n" in card


def test_a_reference_cannot_be_a_runs_data(api_for, engineer, team, roots):
    upstream = ModelVersion.objects.get(pk=imported(api_for, engineer, roots)["version"]["id"])
    with pytest.raises(InvalidInput) as caught:
        lineage_services.registration_create(
            actor=engineer,
            model="acme/ticket-router",
            version="v1",
            artefact_digest=digest("ticket-router"),
            parents=[ParentSpec(upstream, "finetune")],
            training_run={
                "method": "full_finetune",
                "hyperparameters": {"learning_rate": 2e-5},
                "datasets": [DatasetUse("acme/tickets@hub", "train")],
            },
            create_model={"team": team.slug},
        )
    assert "recorded without files" in caught.value.message
    assert not ModelVersion.objects.filter(model__name="acme/ticket-router").exists()


def test_a_reference_cannot_be_an_evaluation_suites_data(api_for, engineer, team, roots):
    imported(api_for, engineer, roots)
    reference = DatasetVersion.objects.get(dataset__hub_id=TICKETS)

    with pytest.raises(InvalidInput) as caught:
        suite_create(
            actor=engineer,
            name="tickets-from-the-card",
            team=team,
            dataset_version=reference,
            **SUITE_DEFAULTS,
        )

    assert caught.value.code == "dataset_reference"
    assert not EvaluationSuite.objects.exists()


def test_the_picture_draws_declared_data_and_folds_a_long_list(api_for, engineer, roots):
    few = ModelVersion.objects.get(pk=imported(api_for, engineer, roots)["version"]["id"])
    names = "".join(f"- acme/corpus-{index}\n" for index in range(5))
    many = ModelVersion.objects.get(
        pk=imported(
            api_for,
            engineer,
            roots,
            f"license: mit\ndatasets:\n{names}",
            repo_id="acme-labs/many",
            sha="9" * 40,
            folder="many",
        )["version"]["id"]
    )

    def picture(version):
        return build_picture(lineage_graph(engineer, version), version_url=lambda pk: f"/v/{pk}")

    drawn = picture(few)
    titles = {node.key: node.title for node in drawn.nodes if node.dataset}
    assert sorted(titles.values()) == ["acme/faq@hub", "acme/tickets@hub"]
    assert {edge.label for edge in drawn.edges} == {"declared"}
    folded = picture(many)
    (node,) = [node for node in folded.nodes if node.dataset]
    assert (node.title, node.subtitle) == ("5 datasets", "named by the card")
    assert [edge.label for edge in folded.edges] == ["declared"]
