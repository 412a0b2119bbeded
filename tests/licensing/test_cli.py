"""`pedigree licence-check` and `pedigree export` against a live server."""

import json

import pytest
from rest_framework.authtoken.models import Token
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from pedigree_client.cli import main

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(live_server, monkeypatch, engineer, licence_tables):
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=engineer).key)
    return main


def test_licence_check_exit_codes(cli, capsys, minilm, derive, dataset):
    clean = derive("acme/support-intent", minilm, version="v1")
    tainted = derive(
        "acme/support-nc", minilm, version="v1", datasets=[dataset("acme/r", "CC-BY-NC-4.0")]
    )
    assert cli(["licence-check", str(clean)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS: licence check of acme/support-intent@v1 for commercial use")

    assert cli(["licence-check", str(tainted), "--use", "commercial", "--stage", "production"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL")
    assert "[ERROR] non-commercial-use" in out
    assert "path: acme/support-nc@v1 —trained on (train)→ acme/r@v1 → CC-BY-NC-4.0" in out
    assert "fix:  Retrain without acme/r@v1" in out

    assert cli(["licence-check", str(tainted), "--use", "research", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"] is True

    assert cli(["licence-check", "acme/nothing@v9"]) == 2
    assert "No version acme/nothing@v9" in capsys.readouterr().err


def test_export_to_files_and_stdout(cli, capsys, tmp_path, minilm, derive):
    tuned = derive("acme/support-intent", minilm, version="v1")
    target = tmp_path / "bom.spdx.json"
    assert cli(["export", str(tuned), "--format", "spdx-2.3", "-o", str(target)]) == 0
    document = JsonLikeDictParser().parse(json.loads(target.read_text()))
    assert validate_full_spdx_document(document) == []
    assert cli(["export", str(tuned), "--format", "spdx-3.0"]) == 0
    assert json.loads(capsys.readouterr().out)["@graph"]
    card = tmp_path / "README.md"
    assert cli(["export", str(tuned), "--format", "model-card", "-o", str(card)]) == 0
    assert card.read_text().startswith("---\n")
    assert cli(["export", str(tuned), "--format", "model-card", "-o", "/nonexistent/x/y"]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_approve_attests_what_the_licence_check_asks(
    live_server, monkeypatch, capsys, compliance_user, upstream, derive, licence_tables
):
    llama = upstream("meta-llama/Llama-3.1-8B", "LicenseRef-Llama-3.1")
    tuned = derive("acme/Llama-3.1-support", llama, "adapter", licence="LicenseRef-Llama-3.1")
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=compliance_user).key)
    attestation = "LicenseRef-Llama-3.1 user_threshold"
    check = ["licence-check", str(tuned), "--stage", "production", "--json"]
    assert main(check) == 1
    assert attestation in capsys.readouterr().out
    assert main(["approve", str(tuned), "--stage", "production", "--attest", attestation]) == 0
    assert tuned.approvals.get().attestations == [attestation]
    capsys.readouterr()
    main(check)
    rules = {v["rule"] for v in json.loads(capsys.readouterr().out)["violations"]}
    assert not rules & {"user-threshold", "user-threshold-attestation"}
