"""Licence evidence as Hub cards really give it: no licence at all, `license: other` with a
name, ambiguous ids; judged by the licence check through imports users run."""

# The snapshot fixtures are imported from the lineage tests; pytest passes them by name.
# ruff: noqa: F811

import json

import pytest

from licensing.exports import version_export
from licensing.selectors import licence_check
from registry import services
from registry.gates import gate_evaluate
from registry.models import ModelVersion
from tests.lineage.test_hub_lineage import (  # noqa: F401  (fixtures)
    ADAPTER,
    ADAPTER_SHA,
    IMPORTS,
    adapter,
    full_model,
    hf_cache,
    no_network,
    roots,
)

pytestmark = pytest.mark.django_db

REPO = "acme-labs/some-model"
SHA = "4" * 40


def imported(api_for, engineer, roots, card: str, *, repo_id=REPO):
    full_model(roots / "snap", card)
    response = api_for(engineer).post(
        IMPORTS,
        {"repo_id": repo_id, "revision": SHA, "snapshot_dir": "teams/acme/snap", "team": "acme"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def violations(version, stage: str) -> dict[str, tuple[str, str]]:
    check = licence_check(version=version, stage=stage)
    return {v.rule: (v.severity, v.message) for v in check.violations}


def test_a_card_without_a_licence_imports_as_noassertion_and_fails_the_check(
    api_for, engineer, roots
):
    body = imported(api_for, engineer, roots, "pipeline_tag: text-generation\n")

    assert body["version"]["licence_declared"] == "NOASSERTION"
    assert body["licence"]["review_required"] is True
    assert "missing licence evidence" in body["licence"]["reason"]
    version = ModelVersion.objects.get(pk=body["version"]["id"])
    found = violations(version, "staging")
    severity, message = found["missing-licence"]
    assert severity == "error" and "missing licence evidence" in message
    check = licence_check(version=version, stage="development")
    assert not check.passed
    fix = next(v.how_to_fix for v in check.violations if v.rule == "missing-licence")
    assert "conclude its licence" in fix
    # SPDX says NOASSERTION, and the model card names no licence, as imported.
    document = json.loads(version_export(user=engineer, version=version, format="spdx-2.3"))
    package = next(p for p in document["packages"] if p["name"] == REPO)
    assert package["licenseDeclared"] == "NOASSERTION"
    card = version_export(user=engineer, version=version, format="model-card")
    assert "license:" not in card.split("---")[1]


@pytest.mark.parametrize("hub_id", ["gpl-3.0", "gpl-2.0", "agpl-3.0", "lgpl-3.0", "bsd", "cc"])
def test_an_ambiguous_hub_id_needs_a_compliance_conclusion(
    api_for, engineer, roots, compliance_user, hub_id
):
    body = imported(api_for, engineer, roots, f"license: {hub_id}\n")
    assert body["version"]["licence_review_required"] is True
    version = ModelVersion.objects.get(pk=body["version"]["id"])

    assert violations(version, "production")["unreviewed-licence-production"][0] == "error"
    assert violations(version, "staging")["unreviewed-licence"][0] == "warning"
    assert not licence_check(version=version, stage="production").passed

    services.version_update(
        actor=compliance_user,
        version=version,
        changes={"licence_concluded": body["version"]["licence_declared"]},
    )
    assert "unreviewed-licence-production" not in violations(version, "production")


def test_an_unambiguous_hub_id_needs_no_conclusion(api_for, engineer, roots):
    body = imported(api_for, engineer, roots, "license: mit\n")
    version = ModelVersion.objects.get(pk=body["version"]["id"])
    assert body["version"]["licence_review_required"] is False
    assert "unreviewed-licence-production" not in violations(version, "production")


def test_an_unresolved_ancestor_is_missing_evidence_not_a_clean_bill(engineer, team, roots):
    child, _ = services.upstream_import(
        actor=engineer,
        team=team,
        repo_id=ADAPTER,
        revision=ADAPTER_SHA,
        snapshot_dir=str(adapter(roots / "lora")),
    )
    check = licence_check(version=child, stage="staging")
    missing = [v for v in check.violations if v.rule == "missing-licence"]
    assert [v.source.ref for v in missing] == ["meta-llama/Llama-3.1-8B-Instruct@unresolved"]
    assert not check.passed
    evaluation = gate_evaluate(version=child, stage="staging")
    licence = next(r for r in evaluation.results if r["check"] == "licence")
    assert not licence["passed"]
    assert any("missing licence evidence" in reason for reason in licence["reasons"])


# black-forest-labs/FLUX.1-dev, stabilityai/stable-diffusion-3.5-large, Qwen/Qwen2.5-72B-Instruct,
# Qwen/Qwen2.5-3B-Instruct and deepseek-ai/DeepSeek-V2 declare these in their cards.
@pytest.mark.parametrize(
    ("license_name", "expression", "review"),
    [
        ("flux-1-dev-non-commercial-license", "LicenseRef-FLUX-1-dev-Non-Commercial", False),
        ("stabilityai-ai-community", "LicenseRef-Stability-AI-Community", True),
        ("qwen", "LicenseRef-Qwen", False),
        ("qwen-research", "LicenseRef-Qwen-Research", False),
        ("deepseek", "LicenseRef-DeepSeek", False),
        ("acme-private-weights-licence", "LicenseRef-Other", True),
    ],
)
def test_license_other_resolves_the_name_against_the_catalogue(
    api_for, engineer, roots, license_name, expression, review
):
    body = imported(
        api_for,
        engineer,
        roots,
        f"license: other\nlicense_name: {license_name}\nlicense_link: LICENSE.md\n",
    )
    assert body["version"]["licence_declared"] == expression
    assert body["licence"]["review_required"] is review
    assert body["version"]["licence_review_required"] is review


def test_flux_dev_is_judged_non_commercial(api_for, engineer, roots):
    body = imported(
        api_for,
        engineer,
        roots,
        "license: other\nlicense_name: flux-1-dev-non-commercial-license\n"
        "license_link: LICENSE.md\n",
    )
    version = ModelVersion.objects.get(pk=body["version"]["id"])
    check = licence_check(version=version, stage="production", use="commercial")
    assert not check.passed
    assert any(v.term_type == "non_commercial" and v.severity == "error" for v in check.violations)
    research = licence_check(version=version, stage="production", use="research")
    assert not any(v.term_type == "non_commercial" and v.blocking for v in research.violations)


def test_terms_follow_an_unknown_relation(engineer, team, roots):
    """Contradicting signs leave the relation unknown; the Llama terms still reach the child."""
    config = {"model_type": "llama", "quantization_config": {"quant_method": "awq"}}
    base, _ = services.upstream_import(
        actor=engineer,
        team=team,
        repo_id="meta-llama/Llama-3.1-8B-Instruct",
        revision="5" * 40,
        snapshot_dir=str(full_model(roots / "llama", "license: llama3.1\n")),
    )
    child, _ = services.upstream_import(
        actor=engineer,
        team=team,
        repo_id=ADAPTER,
        revision=ADAPTER_SHA,
        snapshot_dir=str(
            full_model(
                roots / "odd",
                "base_model: meta-llama/Llama-3.1-8B-Instruct\nlibrary_name: peft\nlicense: mit\n",
                config=config,
            )
        ),
    )
    check = licence_check(version=child, stage="production")
    inherited = {o.licence.id for o in check.obligations if o.source.ref == str(base)}
    assert "LicenseRef-Llama-3.1" in inherited


def test_naming_terms_bind_every_derivative_but_the_licensors_own_releases(engineer, team, roots):
    meta, _ = services.upstream_import(
        actor=engineer,
        team=team,
        repo_id="meta-llama/Meta-Llama-3-8B",
        revision="6" * 40,
        snapshot_dir=str(full_model(roots / "meta", "license: llama3\n")),
    )
    lora, _ = services.upstream_import(
        actor=engineer,
        team=team,
        repo_id="acme-labs/support-lora",
        revision="7" * 40,
        snapshot_dir=str(
            full_model(
                roots / "lora",
                "base_model: meta-llama/Meta-Llama-3-8B\nlibrary_name: peft\nlicense: llama3\n",
            )
        ),
    )

    def naming(version):
        check = licence_check(version=version, stage="production", use="commercial")
        return [v for v in check.violations if v.rule == "naming-prefix"]

    assert naming(meta) == []  # Meta's own release, in a namespace the catalogue names
    (violation,) = {v.message: v for v in naming(lora)}.values()
    assert violation.severity == "error"
    assert '"acme-labs/support-lora" does not' in violation.message


@pytest.mark.parametrize(
    ("base_licence", "child_licence"),
    [("gemma", "apache-2.0"), ("bigscience-openrail-m", "mit")],
)
def test_use_restrictions_not_carried_forward_block_production(
    engineer, team, roots, base_licence, child_licence
):
    base_repo = "google/gemma-2-2b" if base_licence == "gemma" else "bigscience/bloom-560m"
    services.upstream_import(
        actor=engineer,
        team=team,
        repo_id=base_repo,
        revision="8" * 40,
        snapshot_dir=str(full_model(roots / "base", f"license: {base_licence}\n")),
    )
    child, _ = services.upstream_import(
        actor=engineer,
        team=team,
        repo_id="acme-labs/student",
        revision="9" * 40,
        snapshot_dir=str(
            full_model(
                roots / "child",
                f"license: {child_licence}\nbase_model: {base_repo}\n"
                "base_model_relation: finetune\n",
            )
        ),
    )
    assert violations(child, "production")["use-restrictions-passdown-production"][0] == "error"
    assert violations(child, "staging")["use-restrictions-passdown"][0] == "warning"
    assert not licence_check(version=child, stage="production").passed
