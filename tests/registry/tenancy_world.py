"""The objects `tests/registry/test_route_tenancy.py` tries every route on: team acme's private
model, version, dataset, suite, run, hold, waivers, upload and training run, a version acme
shares that derives from them, and bob of team beta who must see none of it."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from evaluators.models import EvaluationRun
from evaluators.services import suite_create
from licensing.models import LicenceWaiver
from lineage import services as lineage_services
from lineage.services import DatasetUse, ParentSpec
from pedigree_client.artefacts import sha256_file
from registry import services
from registry.models import ArtefactInspection, ArtefactUpload, EvidenceProposal, Team
from tests.registry.test_artefacts import build_full_model

# Every name acme gives its private objects carries this, so any answer naming one is caught.
MARK = "zq9"


@dataclass
class World:
    acme: Team
    beta: Team
    alice: Any
    bob: Any
    carol: Any
    base: Any
    model: Any
    version: Any
    edge: Any
    dataset: Any
    dataset_version: Any
    suite: Any
    run: Any
    hold: Any
    licence_waiver: Any
    upload: ArtefactUpload
    inspection: ArtefactInspection
    proposal: Any
    child: Any
    secrets: list[str]


def csv_rows() -> bytes:
    rows = ["text,label,region"] + [
        f"ticket {i},{'positive' if i % 2 else 'negative'},{'north' if i % 3 else 'south'}"
        for i in range(30)
    ]
    return ("\n".join(rows) + "\n").encode()


@pytest.fixture
def world(settings, tmp_path, make_user, team, compliance_user, seeded, api_for) -> World:
    store = tmp_path / "store"
    for slug in ("acme", "beta"):
        (store / "teams" / slug).mkdir(parents=True)
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    alice = make_user("alice", teams=[team])
    Team.objects.filter(pk=team.pk).update(description=f"{MARK} team")
    beta = Team.objects.create(slug="beta", name="Beta Labs")
    bob = make_user("bob", teams=[beta])

    # An upstream base beta shares with the organisation; acme's private version derives from it.
    shared = services.model_create(
        actor=bob, name="beta/shared-base", kind="upstream", team=beta, visibility="internal"
    )
    base = services.version_create(
        actor=bob,
        model=shared,
        version="main",
        artefact_digest="b" * 64,
        licence_declared="Apache-2.0",
    )
    area = store / "teams" / "acme"
    data_file = area / f"{MARK}-tickets.csv"
    data_file.write_bytes(csv_rows())
    dataset = services.dataset_create(actor=alice, name=f"acme/{MARK}-data", team=team)
    dataset_version = services.dataset_version_create(
        actor=alice,
        dataset=dataset,
        version=f"{MARK}-d1",
        sha256=sha256_file(data_file),
        size_bytes=data_file.stat().st_size,
        uri=data_file.as_uri(),
        licence_declared="CC-BY-4.0",
    )
    version = lineage_services.registration_create(
        actor=alice,
        model=f"acme/{MARK}-model",
        version=f"{MARK}-1",
        parents=[ParentSpec(base, "finetune")],
        training_run={
            "method": "full_finetune",
            "hyperparameters": {"learning_rate": 0.01},
            "datasets": [DatasetUse(dataset_version, "train")],
            "notes": f"{MARK} notes",
        },
        artefact_path=str(build_full_model(area / f"{MARK}-weights")),
        create_model={"team": "acme"},
        licence_declared="MIT",
        description=f"{MARK} description",
    )
    suite = suite_create(
        actor=alice,
        name=f"{MARK}-suite",
        team=team,
        dataset_version=dataset_version,
        input_column="text",
        label_column="label",
        sensitive_columns=["region"],
        min_group_size=5,
    )
    # A queued run: nothing needs to execute for its routes to be tried.
    run = EvaluationRun.objects.create(
        suite=suite,
        version=version,
        artefact_digest=version.artefact_digest,
        dataset_sha256=suite.dataset_sha256,
        evaluator="text-classification",
        requested_by=alice,
    )
    expires = timezone.now() + timedelta(days=30)
    services.check_waiver_grant(
        actor=compliance_user,
        version=version,
        check_name="metadata",
        reason=f"{MARK} waiver reason",
        expires_at=expires,
    )
    services.approval_record(
        actor=compliance_user, version=version, stage="staging", comment=f"{MARK} approval"
    )
    licence_waiver = LicenceWaiver.objects.create(
        version=version,
        artefact_digest=version.artefact_digest,
        rule_name="no-copyleft",
        reason=f"{MARK} licence waiver",
        approver=compliance_user,
        granted_by=compliance_user,
        expires_at=expires,
    )
    # Acme shares a child of its private version, trained on its private data, and compliance
    # evaluates it and beta's base on acme's private suite: the organisation sees the child
    # and the base, and nothing of what they came from or were measured on.
    child = lineage_services.registration_create(
        actor=alice,
        model="acme/open-child",
        version="v1",
        parents=[ParentSpec(version, "finetune")],
        training_run={
            "method": "full_finetune",
            "hyperparameters": {"learning_rate": 0.01},
            "datasets": [DatasetUse(dataset_version, "train")],
        },
        artefact_digest="d" * 64,
        create_model={"team": "acme", "visibility": "internal"},
        licence_declared="MIT",
    )
    # Placed once the child exists, so the hold reaches it through its parent.
    hold = lineage_services.hold_place(actor=alice, version=version, reason=f"{MARK} hold reason")
    for evaluated, base_version in ((child, version), (base, None)):
        EvaluationRun.objects.create(
            suite=suite,
            version=evaluated,
            artefact_digest=evaluated.artefact_digest,
            dataset_sha256=suite.dataset_sha256,
            evaluator="text-classification",
            base_version=base_version,
            base_digest=base_version.artefact_digest if base_version else "",
            requested_by=compliance_user,
        )
    folder = build_full_model(tmp_path / "to-upload")
    (folder / "README.md").write_text(f"# {MARK} upload\n")
    files = {
        path.relative_to(folder).as_posix(): SimpleUploadedFile(path.name, path.read_bytes())
        for path in folder.rglob("*")
        if path.is_file()
    }
    response = api_for(alice).post("/api/v1/artefacts/uploads/", files, format="multipart")
    assert response.status_code == 201, response.content
    upload = ArtefactUpload.objects.get(pk=response.json()["id"])
    version.refresh_from_db()
    # Approved, so alice's licence change waits for compliance as a proposal.
    proposal = services.version_edit(
        actor=alice,
        version=version,
        changes={
            "licence_declared": "MIT" if version.licence_declared != "MIT" else "BSD-3-Clause"
        },
        reason=f"{MARK} proposal reason",
    )
    assert isinstance(proposal, EvidenceProposal)
    # A large inspection waiting for a worker (made directly: no worker runs here).
    inspection = ArtefactInspection.objects.create(
        requested_by=alice, path=f"teams/acme/{MARK}-weights", size=1
    )
    secrets = [
        MARK,
        # A digest's first 16 characters already identify it (the model card shows no more).
        version.artefact_digest[:16],
        dataset_version.sha256[:16],
        upload.digest,
        str(upload.pk),
    ]
    return World(
        acme=team,
        beta=beta,
        alice=alice,
        bob=bob,
        carol=compliance_user,
        base=base,
        model=version.model,
        version=version,
        edge=version.parent_edges.get(),
        dataset=dataset,
        dataset_version=dataset_version,
        suite=suite,
        run=run,
        hold=hold,
        licence_waiver=licence_waiver,
        upload=upload,
        inspection=inspection,
        proposal=proposal,
        child=child,
        secrets=secrets,
    )
