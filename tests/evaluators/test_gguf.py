"""A GGUF-only upstream version (a llama.cpp quantization) imports, but the evaluators run
forward passes on safetensors weights: asking for an evaluation of one is a clear 400."""

import pytest

from evaluators.models import EvaluationRun
from registry import services as registry_services
from tests.registry.test_hub_gguf import REPO, SHA, gguf_repo

pytestmark = pytest.mark.django_db


def test_a_gguf_version_cannot_be_evaluated(api_for, engineer, team, roots, make_suite):
    gguf_repo(roots / "gguf")
    version, _ = registry_services.upstream_import(
        actor=engineer, team=team, repo_id=REPO, revision=SHA, snapshot_dir="teams/acme/gguf"
    )
    suite = make_suite()

    response = api_for(engineer).post(
        "/api/v1/evaluation-runs/", {"version": version.pk, "suite": suite.name}, format="json"
    )

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "evaluation_unsupported_format"
    assert "GGUF" in error["message"] and "quantized from" in error["message"]
    assert not EvaluationRun.objects.exists()
