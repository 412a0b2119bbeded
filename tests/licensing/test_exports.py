"""Exports: SPDX 2.3 (validated by spdx-tools), SPDX 3.0.1 JSON-LD (read by the official
SPDX 3 bindings, and by rdflib with the published context's terms substituted for its URL;
nothing fetched) and the Hugging Face
model card."""

import io
import json

import pytest
import rdflib
import yaml
from huggingface_hub import ModelCard
from rdflib.compare import isomorphic
from spdx_python_model import v3_0_1 as spdx
from spdx_tools.spdx.model import RelationshipType
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from licensing.exports import version_export
from licensing.exports.bundle import export_bundle
from licensing.exports.model_card import card_data
from licensing.exports.spdx3 import CONTEXT_URL
from lineage import services as lineage_services
from registry.plugins import EvaluationResultsProvider, plugins

from .spdx3_context import CONTEXT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib.*")

CORE = rdflib.Namespace("https://spdx.org/rdf/3.0.1/terms/Core/")
AI = rdflib.Namespace("https://spdx.org/rdf/3.0.1/terms/AI/")
DATASET = rdflib.Namespace("https://spdx.org/rdf/3.0.1/terms/Dataset/")
SOFTWARE = rdflib.Namespace("https://spdx.org/rdf/3.0.1/terms/Software/")
LICENSING = rdflib.Namespace("https://spdx.org/rdf/3.0.1/terms/SimpleLicensing/")
RELATIONSHIP = rdflib.Namespace("https://spdx.org/rdf/3.0.1/terms/Core/RelationshipType/")


@pytest.fixture
def results(monkeypatch):
    """An evaluation-results provider, as the evaluators app registers one."""

    def provider(version):
        return [
            {
                "task": "text-classification",
                "dataset": "acme/tickets-test",
                "split": "test",
                "metric": "accuracy",
                "value": 0.912,
                # As the evaluators app gives it: the card needs a source's URL with its name.
                "source": "Pedigree evaluation run #7 (tickets)",
                "source_url": "/api/v1/evaluation-runs/7/",
            },
            {
                "task": "text-classification",
                "dataset": "acme/tickets-test",
                "split": "test",
                "metric": "f1",
                "value": 0.887,
            },
        ]

    monkeypatch.setitem(
        plugins._contributions, EvaluationResultsProvider, [EvaluationResultsProvider(provider)]
    )


@pytest.fixture
def family(upstream, derive, dataset, engineer):
    """A Llama 3.1 base, a LoRA adapter trained on two datasets and tested on a third, and a
    merge of the adapter with an Apache-2.0 model."""
    llama = upstream(
        "meta-llama/Llama-3.1-8B", "LicenseRef-Llama-3.1", known_limitations="English first."
    )
    train = dataset("acme/tickets", "CC-BY-4.0", known_biases="Mostly EU customers.")
    test = dataset("acme/tickets-test", "CC-BY-4.0")
    adapter = derive(
        "acme/Llama-3.1-support",
        llama,
        "adapter",
        licence="LicenseRef-Llama-3.1",
        datasets=[train, (test, "test")],
        risk_tier="high",
        domain="customer support",
        known_limitations="Fails on sarcasm.",
        intended_use="Routing support tickets.",
    )
    other = upstream("acme-open/encoder", "Apache-2.0")
    merged = derive(
        "acme/Llama-3.1-merged",
        [adapter, other],
        "merge",
        licence="LicenseRef-Llama-3.1 AND Apache-2.0",
    )
    return {
        "llama": llama,
        "adapter": adapter,
        "merged": merged,
        "train": train,
        "test": test,
        "other": other,
    }


def test_spdx23_document_validates_and_describes_the_lineage(family, engineer):
    text = version_export(user=engineer, version=family["merged"], format="spdx-2.3")
    data = json.loads(text)
    assert data["spdxVersion"] == "SPDX-2.3"
    document = JsonLikeDictParser().parse(data)
    assert validate_full_spdx_document(document) == []
    packages = {package.spdx_id: package for package in document.packages}
    merged, adapter, llama = (family[k] for k in ("merged", "adapter", "llama"))
    assert set(packages) == {
        f"SPDXRef-Model-{v.pk}" for v in (merged, adapter, llama, family["other"])
    } | {f"SPDXRef-Dataset-{d.pk}" for d in (family["train"], family["test"])}
    model = packages[f"SPDXRef-Model-{merged.pk}"]
    assert str(model.license_declared) == "LicenseRef-Llama-3.1 AND Apache-2.0"
    assert model.checksums[0].value == merged.artefact_digest
    relations = {
        (r.spdx_element_id, r.relationship_type, r.related_spdx_element_id)
        for r in document.relationships
    }
    assert (
        "SPDXRef-DOCUMENT",
        RelationshipType.DESCRIBES,
        f"SPDXRef-Model-{merged.pk}",
    ) in relations
    assert (
        f"SPDXRef-Model-{adapter.pk}",
        RelationshipType.DESCENDANT_OF,
        f"SPDXRef-Model-{llama.pk}",
    ) in relations
    assert (
        f"SPDXRef-Model-{adapter.pk}",
        RelationshipType.GENERATED_FROM,
        f"SPDXRef-Dataset-{family['train'].pk}",
    ) in relations
    assert (
        f"SPDXRef-Dataset-{family['test'].pk}",
        RelationshipType.TEST_OF,
        f"SPDXRef-Model-{adapter.pk}",
    ) in relations
    [llama_licence] = document.extracted_licensing_info
    assert llama_licence.license_id == "LicenseRef-Llama-3.1"
    assert llama_licence.cross_references == ["https://www.llama.com/llama3_1/license/"]
    purls = [ref.locator for ref in packages[f"SPDXRef-Model-{llama.pk}"].external_references]
    assert purls == [f"pkg:huggingface/meta-llama/Llama-3.1-8B@{llama.hub_revision}"]


def test_spdx23_redacts_what_the_reader_may_not_see(family, outsider, make_version, make_model):
    from registry import services

    family["other"].model.visibility = "team"
    services.model_update(
        actor=family["other"].model.created_by,
        model=family["other"].model,
        changes={"visibility": "team"},
    )
    services.model_update(
        actor=family["merged"].model.created_by,
        model=family["merged"].model,
        changes={"visibility": "internal"},
    )
    text = version_export(user=outsider, version=family["merged"], format="spdx-2.3")
    document = JsonLikeDictParser().parse(json.loads(text))
    assert validate_full_spdx_document(document) == []
    hidden = next(
        p for p in document.packages if p.spdx_id == f"SPDXRef-Model-{family['other'].pk}"
    )
    assert "not visible to you" in hidden.name
    assert hidden.checksums == []
    assert str(hidden.license_declared) == "Apache-2.0"


def test_spdx30_document_round_trips_through_a_json_ld_parser(family, engineer, results):
    text = version_export(user=engineer, version=family["adapter"], format="spdx-3.0")
    data = json.loads(text)
    assert data["@context"] == CONTEXT_URL == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    # The published context's terms in place of its URL, so that rdflib fetches nothing.
    graph = rdflib.Graph().parse(data=json.dumps(data | {"@context": CONTEXT}), format="json-ld")
    adapter = rdflib.URIRef(
        next(
            node["spdxId"]
            for node in data["@graph"]
            if node.get("type") == "ai_AIPackage" and node.get("name") == "acme/Llama-3.1-support"
        )
    )
    assert (adapter, rdflib.RDF.type, AI.AIPackage) in graph
    assert (
        adapter,
        SOFTWARE.primaryPurpose,
        rdflib.URIRef(SOFTWARE + "SoftwarePurpose/model"),
    ) in graph
    assert (
        adapter,
        AI.safetyRiskAssessment,
        rdflib.URIRef(AI + "SafetyRiskAssessmentType/high"),
    ) in graph
    assert (
        adapter,
        AI.limitation,
        rdflib.Literal("Fails on sarcasm.", datatype=rdflib.XSD.string),
    ) in graph
    assert (
        adapter,
        AI.domain,
        rdflib.Literal("customer support", datatype=rdflib.XSD.string),
    ) in graph
    hyperparameters = {
        str(graph.value(entry, CORE.key)): str(graph.value(entry, CORE.value))
        for entry in graph.objects(adapter, AI.hyperparameter)
    }
    assert hyperparameters == {
        "alpha": "32",
        "rank": "16",
        "target_modules": '["q_proj", "v_proj"]',
    }
    metrics = {
        str(graph.value(entry, CORE.key)): str(graph.value(entry, CORE.value))
        for entry in graph.objects(adapter, AI.metric)
    }
    assert metrics == {
        "accuracy (acme/tickets-test/test)": "0.912",
        "f1 (acme/tickets-test/test)": "0.887",
    }

    def related(kind):
        return {
            (graph.value(rel, CORE["from"]), target)
            for rel in graph.subjects(CORE.relationshipType, RELATIONSHIP[kind])
            for target in graph.objects(rel, CORE.to)
        }

    def named(node):
        return str(graph.value(node, CORE.name))

    assert {(named(a), named(b)) for a, b in related("trainedOn")} == {
        ("acme/Llama-3.1-support", "acme/tickets")
    }
    assert {(named(a), named(b)) for a, b in related("testedOn")} == {
        ("acme/Llama-3.1-support", "acme/tickets-test")
    }
    assert {(named(a), named(b)) for a, b in related("descendantOf")} == {
        ("acme/Llama-3.1-support", "meta-llama/Llama-3.1-8B")
    }
    assert {(named(a), named(b)) for a, b in related("ancestorOf")} == {
        ("meta-llama/Llama-3.1-8B", "acme/Llama-3.1-support")
    }
    declared = {
        named(a): str(graph.value(b, LICENSING.licenseExpression))
        for a, b in related("hasDeclaredLicense")
    }
    assert declared["acme/Llama-3.1-support"] == "LicenseRef-Llama-3.1"
    assert declared["acme/tickets"] == "CC-BY-4.0"
    datasets = set(graph.subjects(rdflib.RDF.type, DATASET.DatasetPackage))
    assert {named(d) for d in datasets} == {"acme/tickets", "acme/tickets-test"}
    train = next(d for d in datasets if named(d) == "acme/tickets")
    assert str(graph.value(train, DATASET.knownBias)) == "Mostly EU customers."
    document = next(graph.subjects(rdflib.RDF.type, CORE.SpdxDocument))
    assert graph.value(document, CORE.rootElement) == adapter
    creation = graph.value(document, CORE.creationInfo)
    assert str(graph.value(creation, CORE.specVersion)) == "3.0.1"
    # Every element of the graph is listed by the document.
    listed = set(graph.objects(document, CORE.element))
    assert set(graph.subjects(CORE.creationInfo, creation)) - {document} == listed

    # Round trip: serialise the parsed graph back to JSON-LD and parse it again: the same
    # graph. (Expanded form: rdflib's compacting serializer drops blank-node subjects that
    # are referenced by id, such as the shared CreationInfo.)
    again = graph.serialize(format="json-ld")
    assert isomorphic(graph, rdflib.Graph().parse(data=again, format="json-ld"))


def test_official_bindings_read_the_export_of_a_family_with_datasets(family, engineer, results):
    text = version_export(user=engineer, version=family["merged"], format="spdx-3.0")
    data = json.loads(text)
    assert data["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    objects = spdx.SHACLObjectSet()
    spdx.JSONLDDeserializer().deserialize_data(data, objects)
    assert objects.link() == set()  # every reference names an element of the document

    models = {o.name: o for o in objects.foreach_type(spdx.ai_AIPackage)}
    assert set(models) == {
        "acme/Llama-3.1-merged",
        "acme/Llama-3.1-support",
        "meta-llama/Llama-3.1-8B",
        "acme-open/encoder",
    }
    datasets = {o.name: o for o in objects.foreach_type(spdx.dataset_DatasetPackage)}
    assert set(datasets) == {"acme/tickets", "acme/tickets-test"}
    adapter = models["acme/Llama-3.1-support"]
    # Single-valued properties are single: the supplier is one Organization, linked.
    assert isinstance(adapter.suppliedBy, spdx.Organization)
    assert adapter.suppliedBy.name == family["adapter"].model.team.name
    assert adapter.software_packageVersion == family["adapter"].version
    assert adapter.verifiedUsing[0].hashValue == family["adapter"].artefact_digest
    assert adapter.ai_safetyRiskAssessment == spdx.ai_SafetyRiskAssessmentType.high

    def related(kind):
        return {
            (rel.from_.name, target.name)
            for rel in objects.foreach_type(spdx.Relationship)
            if rel.relationshipType == kind
            for target in rel.to
        }

    assert related(spdx.RelationshipType.descendantOf) == {
        ("acme/Llama-3.1-merged", "acme/Llama-3.1-support"),
        ("acme/Llama-3.1-merged", "acme-open/encoder"),
        ("acme/Llama-3.1-support", "meta-llama/Llama-3.1-8B"),
    }
    assert related(spdx.RelationshipType.trainedOn) == {("acme/Llama-3.1-support", "acme/tickets")}
    assert related(spdx.RelationshipType.testedOn) == {
        ("acme/Llama-3.1-support", "acme/tickets-test")
    }
    licences = {
        (rel.from_.name, target.simplelicensing_licenseExpression)
        for rel in objects.foreach_type(spdx.Relationship)
        if rel.relationshipType == spdx.RelationshipType.hasDeclaredLicense
        for target in rel.to
    }
    assert ("acme/Llama-3.1-merged", "LicenseRef-Llama-3.1 AND Apache-2.0") in licences
    assert ("acme/tickets", "CC-BY-4.0") in licences
    [document] = objects.foreach_type(spdx.SpdxDocument)
    assert [root.name for root in document.rootElement] == ["acme/Llama-3.1-merged"]

    # Writing it back enforces every cardinality of the model and loses nothing.
    out = io.BytesIO()
    spdx.JSONLDSerializer().write(objects, out)
    again = json.loads(out.getvalue())
    assert again["@context"] == data["@context"]
    assert {n["spdxId"] for n in again["@graph"] if "spdxId" in n} == {
        n["spdxId"] for n in data["@graph"] if "spdxId" in n
    }


def test_model_card_reads_back_identically(family, engineer, results):
    text = version_export(user=engineer, version=family["adapter"], format="model-card")
    card = ModelCard(text)
    assert card.content == text
    expected = card_data(export_bundle(engineer, family["adapter"])).to_dict()
    assert card.data.to_dict() == expected
    metadata = yaml.safe_load(text.split("---")[1])
    assert metadata["license"] == "llama3.1"
    assert metadata["base_model"] == ["meta-llama/Llama-3.1-8B"]
    assert metadata["base_model_relation"] == "adapter"
    assert metadata["datasets"] == ["acme/tickets"]
    [index] = metadata["model-index"]
    assert index["name"] == "acme/Llama-3.1-support"
    metrics = {m["type"]: m["value"] for m in index["results"][0]["metrics"]}
    assert metrics == {"accuracy": 0.912, "f1": 0.887}
    assert [r.metric_value for r in card.data.eval_results] == [0.912, 0.887]
    # Reading and writing again changes nothing.
    assert ModelCard(str(card)).data.to_dict() == expected
    assert "Llama 3.1 Community License §1.b.i" in text  # the obligations section


def test_model_card_licence_for_expressions_and_merges(family, engineer):
    text = version_export(user=engineer, version=family["merged"], format="model-card")
    metadata = ModelCard(text).data.to_dict()
    assert metadata["license"] == "other"
    assert metadata["license_name"] == "LicenseRef-Llama-3.1 AND Apache-2.0"
    assert metadata["license_link"] == "https://www.llama.com/llama3_1/license/"
    assert metadata["base_model_relation"] == "merge"
    assert sorted(metadata["base_model"]) == ["acme-open/encoder", "acme/Llama-3.1-support"]


def test_export_query_count_is_bounded(family, engineer, django_assert_max_num_queries):
    deep = family["merged"]
    for level in range(6):
        deep = lineage_services.registration_create(
            actor=engineer,
            model=deep.model.name,
            version=f"q{level}",
            artefact_digest=f"{level:064x}",
            parents=[lineage_services.ParentSpec(deep, "quantized")],
            training_run={"method": "quantization", "hyperparameters": {"scheme": "int8"}},
        )
    for format in ("spdx-2.3", "spdx-3.0", "model-card"):
        with django_assert_max_num_queries(20):
            version_export(user=engineer, version=deep, format=format)
