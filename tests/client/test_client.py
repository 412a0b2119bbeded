"""`pedigree_client.Client` against a live server: register with datasets, read back, gate,
promote, and every kind of error as its exception."""

import hashlib
import json
from datetime import datetime

import pytest

from lineage.models import LineageEdge, TrainingRun
from pedigree_client import (
    Client,
    ComplianceStatus,
    Conflict,
    DatasetVersion,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PromotionRefused,
    Unavailable,
    Version,
)
from pedigree_client.artefacts import inspect_artefact
from pedigree_client.cli import main
from registry.models import ArtefactUpload, ModelVersion
from registry.models import DatasetVersion as DatasetVersionRow
from tests.conftest import digest
from tests.registry.test_artefacts import build_full_model, write

pytestmark = pytest.mark.django_db(transaction=True)

TICKETS = b'text,label\nrefund please,billing\n"two\nlines",account\nhello,other\n'


def test_register_a_fine_tune_with_its_datasets(pedigree, base, tmp_path):
    data = write(tmp_path / "train.csv", TICKETS)
    tickets = pedigree.datasets.register(
        data, name="acme/tickets", version="2024-06", licence="CC-BY-4.0"
    )
    assert isinstance(tickets, DatasetVersion)
    assert tickets.ref == "acme/tickets@2024-06"
    assert tickets.sha256 == hashlib.sha256(TICKETS).hexdigest()
    assert (tickets.size_bytes, tickets.row_count) == (len(TICKETS), 3)  # a quoted newline
    assert tickets.licence_declared == "CC-BY-4.0"
    pedigree.datasets.register(
        write(tmp_path / "eval.csv", TICKETS[:30]), name="acme/tickets", version="eval"
    )
    folder = build_full_model(tmp_path / "out")

    version = pedigree.register(
        folder,
        model="acme/intent",
        version="1.1",
        team="acme",
        base=str(base),
        relation="finetune",
        method="lora",
        hyperparameters={"rank": 8, "alpha": 16, "target_modules": ["query", "value"]},
        datasets={"train": tickets, "test": "acme/tickets@eval"},
        licence="Apache-2.0",
        risk="limited",
        intended_use="Routing support tickets",
        known_limitations="English only",
    )

    assert isinstance(version, Version)
    assert version.ref == "acme/intent@1.1"
    assert version.artefact_digest == inspect_artefact(folder).digest
    assert (version.risk_tier, version.known_limitations) == ("limited", "English only")
    assert version.stage == "development" and version.registered_by == "alice"
    stored = ModelVersion.objects.get(pk=version.id)
    assert ArtefactUpload.objects.get().consumed_by == stored
    assert LineageEdge.objects.get(child=stored).relation == "finetune"
    run = TrainingRun.objects.get(version=stored)
    assert run.method == "lora" and run.hyperparameters["rank"] == 8
    assert {(d.dataset_version.version, d.role) for d in run.datasets.all()} == {
        ("2024-06", "train"),
        ("eval", "test"),
    }
    assert pedigree.version("acme/intent@1.1") == version
    assert pedigree.version(version.id) == version

    lineage = pedigree.lineage("acme/intent@1.1")
    assert lineage.parents == {str(base): "finetune"}
    assert lineage.datasets == {"acme/tickets@2024-06": "train", "acme/tickets@eval": "test"}
    assert pedigree.datasets.get("acme/tickets@2024-06") == tickets


def test_a_dataset_folder_is_hashed_as_a_manifest(pedigree, tmp_path):
    folder = tmp_path / "shards"
    write(folder / "part-0.parquet", b"zero")
    write(folder / "part-1.parquet", b"one")

    shards = pedigree.datasets.register(folder, name="acme/shards", version="v1")

    lines = sorted(
        f"{name}\t{hashlib.sha256(content).hexdigest()}\t{len(content)}\n"
        for name, content in [("part-0.parquet", b"zero"), ("part-1.parquet", b"one")]
    )
    assert shards.sha256 == hashlib.sha256("".join(lines).encode()).hexdigest()
    assert (shards.size_bytes, shards.row_count) == (7, None)


def test_gate_then_promote(pedigree, make_model, make_version, policy, compliance_user):
    from registry import services

    version = make_version(
        make_model("acme/intent"),
        version="1.1",
        risk_tier="limited",
        intended_use="Routing support tickets",
        known_limitations="English only",
    )
    services.version_update(
        actor=compliance_user, version=version, changes={"licence_concluded": "Apache-2.0"}
    )

    result = pedigree.gate("acme/intent@1.1", stage="production")
    assert not result.passed
    assert (result.version, result.stage, result.use) == (
        "acme/intent@1.1",
        "production",
        "commercial",
    )
    assert [check.check for check in result.failures] == ["approvals"]
    metadata = next(check for check in result.checks if check.check == "metadata")
    assert metadata.passed and metadata.required and metadata.reasons == ()

    with pytest.raises(PromotionRefused) as refused:
        pedigree.promote("acme/intent@1.1", stage="production")
    assert isinstance(refused.value, Conflict)
    assert (refused.value.status, refused.value.code) == (409, "gate_failed")
    decision = refused.value.decision
    assert not decision.passed and decision.to_stage == "production"
    assert [check.check for check in decision.results if check.blocking] == ["approvals"]

    assert pedigree.gate(version.pk, "staging").passed
    decision = pedigree.promote("acme/intent@1.1", "staging")
    assert decision.passed and (decision.from_stage, decision.to_stage) == (
        "development",
        "staging",
    )
    assert decision.actor == "alice"
    assert pedigree.version("acme/intent@1.1").stage == "staging"


def test_the_cli_reports_a_refused_promotion(pedigree, make_version, policy, capsys):
    from pedigree_client.cli import main

    version = make_version(risk_tier="limited")
    code = main(
        [
            "--url",
            pedigree.api.base_url,
            "--token",
            pedigree.api.token,
            "promote",
            str(version),
            "--stage",
            "staging",
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert f"Refused: {version} → staging (decision #" in out
    assert "[FAIL] metadata: missing intended use" in out


def test_not_found_carries_the_envelope(pedigree):
    with pytest.raises(NotFound) as missing:
        pedigree.evaluation(999999)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert missing.value.message.startswith("Not found")
    with pytest.raises(NotFound, match="No version acme/nothing@v9"):
        pedigree.gate("acme/nothing@v9", "staging")
    with pytest.raises(NotFound):
        pedigree.version(999999)


def test_invalid_input_names_every_field(pedigree, base):
    with pytest.raises(InvalidInput) as invalid:
        pedigree.register(
            model="acme/x",
            version="v1",
            team="acme",
            base=str(base),
            risk="extreme",
            artefact_digest=digest("w"),
        )
    error = invalid.value
    assert (error.status, error.code) == (400, "invalid")
    assert "risk_tier" in error.fields
    assert str(error).startswith(f"{error.message} (HTTP 400)")
    assert not ModelVersion.objects.filter(model__name="acme/x").exists()


def test_a_taken_label_is_a_conflict(pedigree, make_model, make_version):
    make_version(make_model("acme/intent"), version="1.1")
    with pytest.raises(Conflict) as taken:
        pedigree.register(model="acme/intent", version="1.1", artefact_digest=digest("w"))
    assert taken.value.status == 409 and "version" in taken.value.fields


def test_problems_found_before_asking(pedigree, tmp_path, monkeypatch, store):
    with pytest.raises(InvalidInput) as no_method:
        pedigree.register(
            tmp_path, model="acme/x", version="v1", datasets={"train": "acme/tickets@v1"}
        )
    assert no_method.value.status is None and "training_run.method" in no_method.value.fields

    folder = build_full_model(tmp_path / "pickled")
    write(folder / "pytorch_model.bin", b"\x80\x04.")
    with pytest.raises(InvalidInput, match="pickle"):
        pedigree.register(folder, model="acme/x", version="v1", team="acme")
    assert not ArtefactUpload.objects.exists()

    monkeypatch.delenv("PEDIGREE_TOKEN", raising=False)
    with pytest.raises(PermissionDenied, match="PEDIGREE_TOKEN"):
        Client(pedigree.api.base_url)


def test_bad_token_and_unreachable_server(pedigree):
    with pytest.raises(PermissionDenied) as refused:
        Client(pedigree.api.base_url, "wrong").version(1)
    assert (refused.value.status, refused.value.code) == (401, "authentication_failed")
    with pytest.raises(Unavailable) as unreachable:
        Client("http://127.0.0.1:9", "x").version(1)
    assert (unreachable.value.status, unreachable.value.code) == (None, "unreachable")


def test_a_new_dataset_needs_a_team_when_you_have_several(
    pedigree, engineer, other_team, tmp_path, capsys
):
    other_team.members.add(engineer)
    with pytest.raises(InvalidInput, match="Name the team with team= \\(yours: acme, globex\\)"):
        pedigree.datasets.register(write(tmp_path / "d.csv", TICKETS), name="acme/d", version="v1")
    # The command line asks the same question by its own option.
    server = ["--url", pedigree.api.base_url, "--token", pedigree.api.token]
    register = ["datasets", "register", str(tmp_path / "d.csv"), "--name", "acme/d"]
    assert main([*server, *register, "--version", "v1", "--licence", "MIT"]) == 2
    assert "Name the team with --team (yours: acme, globex)." in capsys.readouterr().err
    assert not DatasetVersionRow.objects.exists()
    made = pedigree.datasets.register(
        tmp_path / "d.csv", name="globex/d", version="v1", team="globex"
    )
    assert made.ref == "globex/d@v1"


def test_a_dataset_registered_again_is_the_same_and_a_file_uri_becomes_its_uri(pedigree, tmp_path):
    data = write(tmp_path / "train.csv", TICKETS)
    first = pedigree.datasets.register(
        data.as_uri(), name="acme/tickets", version="v1", team="acme"
    )
    assert (first.uri, first.sha256) == (data.as_uri(), hashlib.sha256(TICKETS).hexdigest())

    # A training script run again registers nothing new.
    assert pedigree.datasets.register(data, name="acme/tickets", version="v1") == first
    write(data, TICKETS + b"more,other\n")
    with pytest.raises(Conflict, match="acme/tickets@v1 is already registered with sha256"):
        pedigree.datasets.register(data, name="acme/tickets", version="v1")
    with pytest.raises(InvalidInput, match=r"Cannot hash s3://bucket/train\.csv here"):
        pedigree.datasets.register("s3://bucket/train.csv", name="acme/tickets", version="v2")
    assert DatasetVersionRow.objects.get().pk == first.id


def test_import_hf_from_the_servers_hub_cache(pedigree, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from tests.registry.test_hub_import import TINY, TINY_SHA, cache_repo, tiny_repo

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    cache_repo(tmp_path / "hf-cache", tiny_repo(tmp_path / "source"))

    version = pedigree.import_hf(TINY, revision=TINY_SHA)  # in the caller's only team

    assert version.ref == f"{TINY}@{TINY_SHA[:12]}"
    assert (version.hub_revision, version.licence_declared) == (TINY_SHA, "MIT")
    assert pedigree.import_hf(TINY, revision=TINY_SHA, team="acme") == version


def test_compliance_of_a_production_version_through_the_client_and_the_cli(
    pedigree, make_model, make_version, policy, engineer, compliance_user, capsys
):
    """A production version whose approver left compliance: `Client.compliance` and
    `pedigree compliance` say it is out of compliance, why, and what to do."""
    from django.contrib.auth.models import Group

    from registry import services
    from registry.models import COMPLIANCE_GROUP

    version = make_version(
        make_model("acme/intent"),
        version="1.1",
        risk_tier="limited",
        intended_use="Routing support tickets",
        known_limitations="English only",
    )
    services.version_update(
        actor=compliance_user, version=version, changes={"licence_concluded": "Apache-2.0"}
    )
    services.approval_record(actor=compliance_user, version=version, stage="production")
    services.version_promote(actor=engineer, version=version, stage="production")
    server = ["--url", pedigree.api.base_url, "--token", pedigree.api.token]

    status = pedigree.compliance("acme/intent@1.1")
    assert isinstance(status, ComplianceStatus)
    assert (status.version, status.stage, status.state) == (
        "acme/intent@1.1",
        "production",
        "compliant",
    )
    assert status.compliant and status.current_passed is True and status.failing == ()
    assert isinstance(status.computed_at, datetime)
    assert main([*server, "compliance", "acme/intent@1.1"]) == 0
    assert capsys.readouterr().out.startswith("COMPLIANT: acme/intent@1.1 in production")

    compliance_user.groups.remove(Group.objects.get(name=COMPLIANCE_GROUP))
    status = pedigree.compliance(version.pk)
    assert status.state == "out_of_compliance" and not status.compliant
    assert status.current_passed is False
    [failing] = status.failing
    assert (failing["stage"], failing["check"]) == ("production", "approvals")
    assert any("carol is no longer compliance staff" in r for r in failing["reasons"])
    assert "no longer passes the production gate" in status.action
    assert isinstance(status.out_of_compliance_since, datetime)

    assert main([*server, "compliance", "acme/intent@1.1"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("OUT OF COMPLIANCE: acme/intent@1.1 in production")
    assert "[FAIL] approvals (production): " in out and "What to do: It no longer" in out
    assert main([*server, "compliance", "acme/intent@1.1", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["state"] == "out_of_compliance"
    assert main([*server, "compliance", "acme/nothing@1"]) == 2
