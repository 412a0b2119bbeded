"""Upstream models as the Hub knows them: the bases a card declares become lineage (unresolved
references until imported), relations are declared or inferred with their evidence, and people
correct what an import recorded. Snapshots carry the metadata of real public cards and are
imported through the endpoint, the management command and the CLI users use."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from huggingface_hub import constants
from rest_framework.authtoken.models import Token
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from licensing.exports import version_export
from lineage.checks import lineage_health
from lineage.models import LineageEdge
from pedigree_client.cli import main
from registry import services
from registry.errors import InvalidInput
from registry.gates import GateContext, gate_evaluate
from registry.models import AuditEntry, ModelVersion, RegisteredModel
from registry.plugins import EvaluationResultsProvider, plugins
from tests.registry.test_artefacts import (
    PEFT_ADAPTER_CONFIG,
    build_adapter,
    save_small_model,
    write,
)
from tests.registry.test_hub_import import cache_repo, no_network  # noqa: F401  (a fixture)

IMPORTS = "/api/v1/imports/hf/"
# meta-llama/Llama-3.1-8B-Instruct: `license: llama3.1`, gated.
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_CARD = "license: llama3.1\nlanguage:\n- en\npipeline_tag: text-generation\n"
LLAMA_SHA = "0e9e39f249a16976918f6564b8830bc894c89659"
# A LoRA adapter as PEFT writes its card: base_model, library_name: peft, no relation given.
ADAPTER = "acme-labs/llama31-support-lora"
ADAPTER_CARD = f"base_model: {LLAMA}\nlibrary_name: peft\nlicense: llama3.1\n"
ADAPTER_SHA = "1" * 40
# TheBloke/Llama-2-7B-GPTQ: base_model, quantized_by, and a quantization_config in config.json.
GPTQ = "TheBloke/Llama-2-7B-GPTQ"
GPTQ_CARD = (
    "base_model: meta-llama/Llama-2-7b-hf\ninference: false\nlicense: llama2\n"
    "model_creator: Meta\nmodel_name: Llama 2 7B\nmodel_type: llama\nquantized_by: TheBloke\n"
)
GPTQ_SHA = "2" * 40
# mlabonne/Marcoro14-7B-slerp: a mergekit merge of two models.
MERGE = "mlabonne/Marcoro14-7B-slerp"
MERGE_BASES = ["AIDC-ai-business/Marcoroni-7B-v3", "EmbeddedLLM/Mistral-7B-Merge-14-v0.1"]
MERGE_CARD = (
    "license: apache-2.0\ntags:\n- merge\n- mergekit\n- lazymergekit\n"
    f"base_model:\n- {MERGE_BASES[0]}\n- {MERGE_BASES[1]}\n"
)
MERGE_SHA = "3" * 40

pytestmark = pytest.mark.django_db


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def roots(settings, tmp_path, hf_cache) -> Path:
    """The team acme's area under the artefact root: where its engineers may name folders."""
    store = tmp_path / "store"
    store.mkdir()
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    area = store / "teams" / "acme"
    area.mkdir(parents=True)
    return area


def full_model(folder: Path, card: str, *, config: dict | None = None) -> Path:
    save_small_model(folder / "model.safetensors", metadata={"format": "pt"})
    write(folder / "config.json", json.dumps(config or {"model_type": "llama"}).encode())
    write(folder / "README.md", f"---\n{card}---\n# Model\n".encode())
    return folder


def adapter(folder: Path, card: str = ADAPTER_CARD) -> Path:
    build_adapter(folder, {**PEFT_ADAPTER_CONFIG, "base_model_name_or_path": LLAMA})
    write(folder / "README.md", f"---\n{card}---\n# Support adapter\n".encode())
    return folder


def import_dir(actor, team, repo_id, sha, folder, **options):
    return services.upstream_import(
        actor=actor, team=team, repo_id=repo_id, revision=sha, snapshot_dir=str(folder), **options
    )


def parents_of(version) -> list[LineageEdge]:
    return list(LineageEdge.objects.filter(child=version).select_related("parent__model"))


# --- declared bases ------------------------------------------------------------------------


def test_an_unimported_base_becomes_an_unresolved_reference(api_for, engineer, roots):
    adapter(roots / "lora")

    response = api_for(engineer).post(
        IMPORTS,
        {
            "repo_id": ADAPTER,
            "revision": ADAPTER_SHA,
            "snapshot_dir": "teams/acme/lora",
            "team": "acme",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["base_models"] == [
        {"repo_id": LLAMA, "registered": f"{LLAMA}@unresolved", "unresolved": True}
    ]
    child = ModelVersion.objects.get(hub_repo_id=ADAPTER)
    (edge,) = parents_of(child)
    reference = edge.parent
    assert reference.unresolved and reference.artefact_digest == ""
    assert reference.licence_declared == "" and reference.hub_revision == ""
    assert reference.model.kind == "upstream" and reference.model.name == LLAMA
    assert edge.parent_digest == "" and edge.parent_newest
    # The reference is shown as such in the API and in the lineage graph.
    api = api_for(engineer)
    shown = api.get(f"/api/v1/versions/{reference.pk}/").json()
    assert shown["unresolved"] is True and shown["artefact_digest"] == ""
    graph = api.get(f"/api/v1/versions/{child.pk}/lineage/").json()
    node = next(node for node in graph["nodes"] if node.get("version_id") == reference.pk)
    assert node["unresolved"] is True
    assert [
        a.action for a in AuditEntry.objects.filter(action__startswith="version.").order_by("pk")
    ] == [
        "version.create",
        "version.import_hf",
        "version.reference_create",
    ]


def test_an_unresolved_ancestor_fails_the_gate_and_importing_it_resolves_in_place(
    engineer, team, roots
):
    child, _ = import_dir(engineer, team, ADAPTER, ADAPTER_SHA, adapter(roots / "lora"))
    (edge,) = parents_of(child)
    result = lineage_health(GateContext(version=child, stage="staging"))
    assert not result.passed
    assert any("unresolved upstream reference" in r and LLAMA in r for r in result.reasons)
    assert result.evidence["unresolved_ancestors"] == [f"{LLAMA}@unresolved"]
    with pytest.raises(InvalidInput, match="unresolved upstream reference"):
        services.version_promote(actor=engineer, version=edge.parent, stage="staging")

    base, created = import_dir(
        engineer, team, LLAMA, LLAMA_SHA, full_model(roots / "llama", LLAMA_CARD)
    )

    assert created and base.pk == edge.parent_id  # the same row, filled in
    assert not base.unresolved and base.version == LLAMA_SHA[:12]
    assert base.licence_declared == "LicenseRef-Llama-3.1"
    edge.refresh_from_db()
    assert edge.parent_digest == base.artefact_digest
    result = lineage_health(GateContext(version=child, stage="staging"))
    assert result.evidence["unresolved_ancestors"] == []
    assert not any("unresolved" in reason for reason in result.reasons)
    assert AuditEntry.objects.filter(action="version.resolve_upstream", object_id=str(base.pk))
    assert AuditEntry.objects.filter(action="lineage_edge.resolve", object_id=str(edge.pk))


def test_a_base_already_imported_is_linked_directly_newest_or_pinned(engineer, team, roots):
    old_sha, new_sha = "a" * 40, "b" * 40
    old, _ = import_dir(engineer, team, LLAMA, old_sha, full_model(roots / "old", LLAMA_CARD))
    new, _ = import_dir(engineer, team, LLAMA, new_sha, full_model(roots / "new", LLAMA_CARD))

    newest, _ = import_dir(engineer, team, ADAPTER, ADAPTER_SHA, adapter(roots / "lora"))
    pinned, _ = import_dir(
        engineer,
        team,
        "acme-labs/pinned-lora",
        ADAPTER_SHA,
        adapter(roots / "pinned"),
        base_revisions={LLAMA: old_sha},
    )

    (edge,) = parents_of(newest)
    assert edge.parent == new and edge.parent_newest and edge.parent_digest == new.artefact_digest
    (edge,) = parents_of(pinned)
    assert edge.parent == old and not edge.parent_newest


def test_a_pinned_base_not_imported_is_a_pinned_reference(engineer, team, roots):
    import_dir(engineer, team, LLAMA, "a" * 40, full_model(roots / "old", LLAMA_CARD))
    child, _ = import_dir(
        engineer,
        team,
        ADAPTER,
        ADAPTER_SHA,
        adapter(roots / "lora"),
        base_revisions={LLAMA: LLAMA_SHA},
    )
    (edge,) = parents_of(child)
    assert edge.parent.unresolved and edge.parent.hub_revision == LLAMA_SHA
    assert edge.parent.version == LLAMA_SHA[:12] and not edge.parent_newest

    base, _ = import_dir(engineer, team, LLAMA, LLAMA_SHA, full_model(roots / "new", LLAMA_CARD))
    assert base.pk == edge.parent_id and not base.unresolved


def test_with_bases_imports_the_family_from_the_offline_cache(
    engineer, team, roots, hf_cache, tmp_path
):
    cache_repo(hf_cache, full_model(tmp_path / "llama", LLAMA_CARD), repo_id=LLAMA, sha=LLAMA_SHA)
    folder = cache_repo(hf_cache, adapter(tmp_path / "lora"), repo_id=ADAPTER, sha=ADAPTER_SHA)
    out = io.StringIO()

    call_command(
        "import_hf",
        ADAPTER,
        "--snapshot-dir",
        str(folder),
        "--with-bases",
        "--user",
        "alice",
        stdout=out,
    )

    child = ModelVersion.objects.get(hub_repo_id=ADAPTER)
    (edge,) = parents_of(child)
    assert not edge.parent.unresolved and edge.parent.hub_revision == LLAMA_SHA
    assert edge.parent_digest == edge.parent.artefact_digest
    assert f"base model  {LLAMA} ({LLAMA}@{LLAMA_SHA[:12]})" in out.getvalue()
    assert not ModelVersion.objects.filter(unresolved=True).exists()


def test_without_with_bases_the_command_reports_the_reference(engineer, team, roots):
    out = io.StringIO()
    call_command(
        "import_hf",
        ADAPTER,
        "--revision",
        ADAPTER_SHA,
        "--snapshot-dir",
        str(adapter(roots / "lora")),
        "--user",
        "alice",
        stdout=out,
    )
    assert f"{LLAMA}@unresolved: unresolved reference" in out.getvalue()
    with pytest.raises(CommandError, match="REPO@SHA"):
        call_command("import_hf", ADAPTER, "--base-revision", "no-sha", "--user", "alice")


@pytest.mark.django_db(transaction=True)
def test_cli_imports_with_bases_and_corrects_a_parent(
    live_server, monkeypatch, capsys, engineer, roots, hf_cache, tmp_path
):
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=engineer).key)
    cache_repo(hf_cache, full_model(tmp_path / "llama", LLAMA_CARD), repo_id=LLAMA, sha=LLAMA_SHA)
    cache_repo(hf_cache, adapter(tmp_path / "lora"), repo_id=ADAPTER, sha=ADAPTER_SHA)

    assert main(["import-hf", ADAPTER, "--revision", ADAPTER_SHA, "--with-bases"]) == 0
    out = capsys.readouterr().out
    assert f"base model  {LLAMA} ({LLAMA}@{LLAMA_SHA[:12]})" in out

    child = f"{ADAPTER}@{ADAPTER_SHA[:12]}"
    (edge,) = parents_of(ModelVersion.objects.get(hub_repo_id=ADAPTER))
    assert (
        main(
            [
                "parent",
                "correct",
                child,
                str(edge.pk),
                "--relation",
                "finetune",
                "--reason",
                "the adapter was merged into the weights",
            ]
        )
        == 0
    )
    assert "—finetune→" in capsys.readouterr().out
    edge.refresh_from_db()
    assert edge.relation == "finetune" and not edge.relation_inferred
    assert edge.relation_confirmed_by is None  # an engineer corrects; compliance confirms


# --- bad input: nothing written ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ("license: mit\nbase_model: 'not a repo id'\n", "base_model"),
        ("license: mit\nbase_model: [3]\n", "base_model"),
        (f"license: mit\nbase_model: {LLAMA}\nbase_model_relation: remix\n", "base_model_relation"),
    ],
)
def test_a_malformed_base_model_is_a_400_naming_the_field(api_for, engineer, roots, card, field):
    full_model(roots / "bad", card)
    response = api_for(engineer).post(
        IMPORTS,
        {
            "repo_id": ADAPTER,
            "revision": ADAPTER_SHA,
            "snapshot_dir": "teams/acme/bad",
            "team": "acme",
        },
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert not RegisteredModel.objects.exists() and not AuditEntry.objects.exists()


def test_a_cycle_through_declared_bases_is_refused(api_for, engineer, roots, hf_cache, tmp_path):
    a, b = "acme-labs/model-a", "acme-labs/model-b"
    cache_repo(
        hf_cache,
        full_model(tmp_path / "a", f"license: mit\nbase_model: {b}\n"),
        repo_id=a,
        sha="a" * 40,
    )
    cache_repo(
        hf_cache,
        full_model(tmp_path / "b", f"license: mit\nbase_model: {a}\n"),
        repo_id=b,
        sha="b" * 40,
    )

    response = api_for(engineer).post(
        IMPORTS,
        {"repo_id": a, "revision": "a" * 40, "with_bases": True, "team": "acme"},
        format="json",
    )

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "base_model_cycle" and "base_model" in error["fields"]
    assert f"{a} → {b} → {a}" in error["message"]
    assert not RegisteredModel.objects.exists() and not AuditEntry.objects.exists()


def test_a_cycle_closed_by_a_later_import_is_refused(engineer, team, roots):
    a, b = "acme-labs/model-a", "acme-labs/model-b"
    import_dir(
        engineer, team, a, "a" * 40, full_model(roots / "a", f"license: mit\nbase_model: {b}\n")
    )
    reference = ModelVersion.objects.get(hub_repo_id=b)
    audited = AuditEntry.objects.count()

    with pytest.raises(InvalidInput) as caught:
        import_dir(
            engineer, team, b, "b" * 40, full_model(roots / "b", f"license: mit\nbase_model: {a}\n")
        )

    assert "base_model" in caught.value.fields and "cycle" in caught.value.message
    reference.refresh_from_db()
    assert reference.unresolved  # nothing was resolved
    assert AuditEntry.objects.count() == audited


def test_recursion_deeper_than_the_bound_is_refused(api_for, engineer, roots, hf_cache, tmp_path):
    chain = [f"acme-labs/level-{n}" for n in range(7)]
    for index, repo_id in enumerate(chain):
        card = "license: mit\n" + (
            f"base_model: {chain[index + 1]}\n" if index + 1 < len(chain) else ""
        )
        cache_repo(
            hf_cache, full_model(tmp_path / repo_id, card), repo_id=repo_id, sha=f"{index:040x}"
        )

    response = api_for(engineer).post(
        IMPORTS,
        {"repo_id": chain[0], "revision": f"{0:040x}", "with_bases": True, "team": "acme"},
        format="json",
    )

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "base_model_too_deep"
    assert "base_model" in response.json()["error"]["fields"]
    assert not RegisteredModel.objects.exists()


# --- relations ---------------------------------------------------------------------------------


def test_an_adapter_is_inferred_with_its_evidence(engineer, team, roots):
    child, _ = import_dir(engineer, team, ADAPTER, ADAPTER_SHA, adapter(roots / "lora"))
    (edge,) = parents_of(child)
    assert edge.relation == "adapter" and edge.relation_inferred
    assert edge.relation_evidence == [
        "adapter_config.json is in the repository",
        "the card declares library_name: peft",
    ]
    result = lineage_health(GateContext(version=child, stage="staging"))
    assert result.evidence["unconfirmed_relations"] == [f"{child} —adapter→ {LLAMA}@unresolved"]


def test_a_gptq_quantization_is_inferred(engineer, team, roots):
    config = {"model_type": "llama", "quantization_config": {"bits": 4, "quant_method": "gptq"}}
    child, _ = import_dir(
        engineer, team, GPTQ, GPTQ_SHA, full_model(roots / "q", GPTQ_CARD, config=config)
    )
    (edge,) = parents_of(child)
    assert edge.relation == "quantized" and edge.relation_inferred
    assert edge.relation_evidence == [
        "config.json has a quantization_config (gptq)",
        "the card declares quantized_by: TheBloke",
    ]


def test_a_mergekit_merge_has_one_merge_edge_per_base(engineer, team, roots):
    folder = full_model(roots / "merge", MERGE_CARD)
    write(folder / "mergekit_config.yml", b"merge_method: slerp\n")
    child, _ = import_dir(engineer, team, MERGE, MERGE_SHA, folder)
    edges = parents_of(child)
    assert [edge.parent.model.name for edge in edges] == MERGE_BASES
    assert {edge.relation for edge in edges} == {"merge"}
    assert edges[0].relation_evidence == [
        "the card declares 2 base models",
        "mergekit_config.yml is in the repository",
    ]


def test_a_declared_relation_is_taken_as_declared(engineer, team, roots):
    card = f"license: llama3.1\nbase_model: {LLAMA}\nbase_model_relation: finetune\n"
    child, _ = import_dir(engineer, team, ADAPTER, ADAPTER_SHA, full_model(roots / "ft", card))
    (edge,) = parents_of(child)
    assert edge.relation == "finetune" and not edge.relation_inferred
    assert edge.relation_evidence == ["the card declares base_model_relation: finetune"]


def test_contradicting_signs_leave_the_relation_unknown_until_compliance_resolves_it(
    api_for, engineer, team, roots, compliance_user
):
    config = {"model_type": "llama", "quantization_config": {"quant_method": "awq"}}
    folder = full_model(roots / "odd", ADAPTER_CARD, config=config)
    child, _ = import_dir(engineer, team, ADAPTER, ADAPTER_SHA, folder)
    (edge,) = parents_of(child)
    assert edge.relation == "unknown"
    assert edge.relation_evidence[0] == "the signs contradict each other"

    production = lineage_health(GateContext(version=child, stage="production"))
    staging = lineage_health(GateContext(version=child, stage="staging"))
    assert any("relation 'unknown'" in reason for reason in production.reasons)
    assert not any("relation 'unknown'" in reason for reason in staging.reasons)
    assert staging.evidence["unknown_relations"]

    response = api_for(compliance_user).patch(
        f"/api/v1/versions/{child.pk}/parents/{edge.pk}/",
        {"relation": "quantized", "reason": "AWQ weights; the card's peft tag is stale"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["relation"] == "quantized"
    assert response.json()["relation_confirmed_by"] == "carol"
    production = lineage_health(GateContext(version=child, stage="production"))
    assert not any("relation 'unknown'" in reason for reason in production.reasons)
    entry = AuditEntry.objects.get(action="lineage_edge.correct")
    assert entry.before["relation"] == "unknown" and entry.after["relation"] == "quantized"


def test_correcting_a_parent_checks_the_family(api_for, engineer, team, roots, outsider):
    child, _ = import_dir(engineer, team, ADAPTER, ADAPTER_SHA, adapter(roots / "lora"))
    base, _ = import_dir(engineer, team, LLAMA, "c" * 40, full_model(roots / "l", LLAMA_CARD))
    (edge,) = parents_of(child)
    url = f"/api/v1/versions/{child.pk}/parents/{edge.pk}/"
    api = api_for(engineer)

    assert api.patch(url, {"relation": "adapter"}, format="json").status_code == 400  # no reason
    assert (
        api.patch(url, {"parent": str(child.pk), "reason": "x"}, format="json").status_code == 400
    )
    assert (
        api_for(outsider)
        .patch(url, {"relation": "adapter", "reason": "x"}, format="json")
        .status_code
        == 403
    )
    response = api.patch(
        url, {"parent": f"{LLAMA}@{'c' * 12}", "reason": "the right base"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["parent_digest"] == base.artefact_digest


def test_governance_refuses_unresolved_references(engineer, team, roots, compliance_user):
    child, _ = import_dir(engineer, team, ADAPTER, ADAPTER_SHA, adapter(roots / "lora"))
    reference = parents_of(child)[0].parent
    with pytest.raises(InvalidInput, match="unresolved upstream reference"):
        services.approval_record(
            actor=compliance_user, version=reference, stage="staging", decision="approve"
        )
    evaluation = gate_evaluate(version=reference, stage="staging")
    assert not evaluation.passed


# --- exports -------------------------------------------------------------------------------------


def test_exports_show_an_unresolved_reference_as_such(engineer, team, roots):
    child, _ = import_dir(engineer, team, ADAPTER, ADAPTER_SHA, adapter(roots / "lora"))
    reference = parents_of(child)[0].parent

    data = json.loads(version_export(user=engineer, version=child, format="spdx-2.3"))
    document = JsonLikeDictParser().parse(data)
    assert validate_full_spdx_document(document) == []
    package = next(p for p in document.packages if p.spdx_id == f"SPDXRef-Model-{reference.pk}")
    assert package.checksums == [] and "unresolved upstream reference" in package.summary
    assert any("none (unresolved)" in (r.comment or "") for r in document.relationships)

    graph = json.loads(version_export(user=engineer, version=child, format="spdx-3.0"))["@graph"]
    node = next(n for n in graph if n.get("name") == LLAMA)
    assert "verifiedUsing" not in node and "unresolved upstream reference" in node["summary"]

    card = version_export(user=engineer, version=child, format="model-card")
    assert f"`{LLAMA}@unresolved` (an unresolved upstream reference" in card


def test_the_model_card_export_of_an_evaluated_import_round_trips(
    engineer, team, roots, monkeypatch
):
    """Results as the evaluators app provides them (with their source) used to make the card
    export fail; the exported card, imported again, gives back the same facts."""
    results = [
        {
            "task": "text-classification",
            "dataset": "acme/tickets-test",
            "dataset_type": "acme/tickets-test",
            "split": "v1",
            "metric": "accuracy",
            "value": 0.912,
            "source": "Pedigree evaluation run #7 (tickets)",
        }
    ]
    monkeypatch.setitem(
        plugins._contributions,
        EvaluationResultsProvider,
        [EvaluationResultsProvider(lambda version: results)],
    )
    card = ADAPTER_CARD + "datasets:\n- acme/tickets\n"
    child, _ = import_dir(engineer, team, ADAPTER, ADAPTER_SHA, adapter(roots / "lora", card))

    exported = version_export(user=engineer, version=child, format="model-card")

    folder = adapter(roots / "again", exported.split("---")[1].lstrip("\n"))
    again, _ = import_dir(engineer, team, "acme-labs/round-trip", "e" * 40, folder)
    assert again.licence_declared == child.licence_declared == "LicenseRef-Llama-3.1"
    assert again.hub_card["base_models"] == child.hub_card["base_models"] == [LLAMA]
    assert again.hub_card["datasets"] == ["acme/tickets"]
    (edge,) = parents_of(again)
    assert edge.relation == "adapter" and edge.parent == parents_of(child)[0].parent
    (index,) = again.hub_card["metadata"]["model-index"]
    assert index["results"][0]["metrics"][0] == {"type": "accuracy", "value": 0.912}
