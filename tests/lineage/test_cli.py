"""`pedigree register` and `pedigree lineage` against a live server, with real tokens."""

import json

import pytest
from rest_framework.authtoken.models import Token

from lineage import services
from lineage.models import Hold, LineageEdge, TrainingRun
from pedigree_client.cli import main
from registry.models import ModelVersion
from tests.conftest import digest
from tests.registry.test_artefacts import save_small_model

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(live_server, monkeypatch, engineer):
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=engineer).key)
    return main


@pytest.fixture
def store(settings, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    return store


def test_register_a_fine_tune_then_read_its_lineage(
    cli, capsys, base, make_dataset_version, tmp_path, store
):
    tickets = make_dataset_version("acme/tickets")
    make_dataset_version("acme/tickets-eval")
    weights = save_small_model(tmp_path / "head" / "model.safetensors")
    hyperparameters = tmp_path / "hp.json"
    hyperparameters.write_text(
        json.dumps({"head": "linear", "learning_rate": 0.05, "epochs": 40, "seed": 0})
    )
    code = cli(
        [
            "register",
            str(weights.parent),
            "--model",
            "acme/support-intent",
            "--version",
            "v1",
            "--team",
            "acme",
            "--base",
            str(base),
            "--relation",
            "adapter",
            "--method",
            "feature_extraction",
            "--hyperparameters",
            f"@{hyperparameters}",
            "--dataset",
            "train=acme/tickets@v1",
            "--dataset",
            "test=acme/tickets-eval@v1",
            "--licence",
            "Apache-2.0",
            "--code-revision",
            "ab" * 20,
            "--framework",
            "torch=2.13.0",
            "--device-kind",
            "cpu",
            "--energy-kwh",
            "0.01",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Registered acme/support-intent@v1" in out
    assert f"adapter of {base}" in out and "train=acme/tickets@v1" in out
    version = ModelVersion.objects.get(model__name="acme/support-intent")
    assert version.artefact_manifest["format"] == "full"  # inspected from the upload
    run = TrainingRun.objects.get(version=version)
    assert run.hyperparameters["learning_rate"] == 0.05 and run.energy_kwh == 0.01
    assert run.datasets.get(role="train").sha256 == tickets.sha256

    assert cli(["lineage", "acme/support-intent@v1"]) == 0
    tree = capsys.readouterr().out.splitlines()
    assert tree[0].startswith("acme/support-intent@v1  [development]  sha256:")
    assert any(
        line.startswith("├── adapter: sentence-transformers/all-MiniLM-L6-v2@main")
        or line.startswith("└── adapter: sentence-transformers/all-MiniLM-L6-v2@main")
        for line in tree
    )
    assert any("train data: acme/tickets@v1" in line for line in tree)

    assert cli(["lineage", str(base), "--descendants", "--format", "json"]) == 0
    graph = json.loads(capsys.readouterr().out)
    versions = {n["ref"] for n in graph["nodes"] if n["kind"] == "version"}
    assert versions == {str(base), "acme/support-intent@v1"}


def test_merge_tree_prints_a_shared_ancestor_once(cli, capsys, base, derive, compliance_user):
    left, right = derive(base), derive(base)
    merged = derive(left, right, relation="merge")
    services.hold_place(actor=compliance_user, version=base, reason="licence withdrawn")
    assert cli(["lineage", str(merged)]) == 0
    out = capsys.readouterr().out
    assert out.count(f"{base}  [development]") == 2
    assert "(shown above)" in out
    assert "HELD" in out and "licence withdrawn" in out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--hyperparameters", "{nope"], "--hyperparameters is not valid JSON"),
        (
            ["--hyperparameters", '{"learning_rate": "fast"}'],
            "training_run.hyperparameters.learning_rate: 'fast' is not of type 'number'",
        ),
        (
            [
                "--parent",
                "acme/ghost@v1:distillation",
                "--method",
                "distillation",
                "--hyperparameters",
                '{"temperature": 2.0}',
            ],
            "No version acme/ghost@v1",
        ),
        (["--dataset", "eval=acme/tickets@v1"], "Unknown dataset role 'eval'"),
        (["--relation", "merge"], "A merge needs at least two parents"),
    ],
)
def test_bad_registrations_say_why_and_write_nothing(cli, capsys, base, arguments, message):
    code = cli(
        [
            "register",
            "--digest",
            digest("w"),
            "--model",
            "acme/x",
            "--version",
            "v1",
            "--team",
            "acme",
            "--base",
            str(base),
            "--method",
            "full_finetune",
            "--hyperparameters",
            '{"learning_rate": 1e-5}',
            *arguments,
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not ModelVersion.objects.filter(model__name="acme/x").exists()
    assert not LineageEdge.objects.exists()


def test_register_needs_exactly_one_artefact(cli, capsys):
    assert cli(["register", "--model", "acme/x", "--version", "v1"]) == 2
    assert "Give exactly one artefact" in capsys.readouterr().err


def test_register_records_the_metadata_the_gate_needs(cli, capsys, base):
    code = cli(
        [
            "register",
            "--digest",
            digest("meta"),
            "--model",
            "acme/meta",
            "--version",
            "v1",
            "--team",
            "acme",
            "--base",
            str(base),
            "--licence",
            "Apache-2.0",
            "--risk-tier",
            "limited",
            "--intended-use",
            "Routing support tickets",
            "--known-limitations",
            "English only",
        ]
    )
    assert code == 0, capsys.readouterr().err
    version = ModelVersion.objects.get(model__name="acme/meta")
    assert (version.intended_use, version.known_limitations, version.risk_tier) == (
        "Routing support tickets",
        "English only",
        "limited",
    )


def test_hold_place_and_lift(cli, capsys, base, derive, compliance_user):
    child = derive(base)
    assert (
        cli(
            [
                "hold",
                "place",
                str(child),
                "--reason",
                "training data withdrawn",
                "--category",
                "data",
                "--reference",
                "LEGAL-7",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    hold = Hold.objects.get()
    assert f"Placed hold #{hold.pk} (data) on {child}: 1 version(s) held" in out
    assert f"pedigree hold lift {hold.pk}" in out
    assert (hold.reason, hold.reference, hold.placed_by.username) == (
        "training data withdrawn",
        "LEGAL-7",
        "alice",
    )

    # Only compliance staff lift holds.
    assert cli(["hold", "lift", str(hold.pk), "--reason", "fine"]) == 2
    assert "HTTP 403" in capsys.readouterr().err
    carol = Token.objects.create(user=compliance_user).key
    lift = ["--token", carol, "hold", "lift", str(hold.pk), "--reason", "data restored"]
    assert cli([*lift, "--json"]) == 0
    lifted = json.loads(capsys.readouterr().out)
    assert lifted["active"] is False and lifted["lift_reason"] == "data restored"
    assert cli(lift) == 2  # already lifted
    assert "pedigree: error:" in capsys.readouterr().err


def test_hold_failures(cli, capsys, base):
    assert cli(["hold", "place", "acme/ghost@v1", "--reason", "x"]) == 2
    assert "No version 'acme/ghost@v1' that you can see" in capsys.readouterr().err
    assert cli(["hold", "lift", "999", "--reason", "x"]) == 2
    assert "HTTP 404" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli(["hold", "place", str(base), "--reason", "x", "--category", "vibes"])
    assert usage.value.code == 2
    with pytest.raises(SystemExit):
        cli(["hold", "place", str(base)])  # --reason is required
    assert not Hold.objects.exists()


def test_protected_lineage_changes_are_proposed_and_an_officer_concludes_them(
    cli, capsys, base, make_version, make_user
):
    from registry import services as registry_services

    carol, dan = make_user("carol", compliance=True), make_user("dan", compliance=True)
    other = make_version(licence_declared="MIT")
    orphan, child = (
        make_version(risk_tier="high", intended_use="Routing", known_limitations="EN")
        for _ in range(2)
    )
    edge = services.edge_create(
        actor=child.registered_by, child=child, parent=base, relation="finetune"
    )
    for version in (orphan, child):
        registry_services.approval_record(actor=carol, version=version, stage="production")

    assert cli(["parent", "add", str(orphan), str(other), "--relation", "finetune"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Proposed, not changed: ") and "proposal #" in out
    assert f"adding parent {other} (finetune, licence MIT)" in out
    correct = ["parent", "correct", str(child), str(edge.pk), "--relation", "adapter"]
    assert cli([*correct, "--reason", "LoRA"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Proposed, not changed: ")
    assert f"changing the relation to {base} from finetune to adapter" in out
    assert not LineageEdge.objects.filter(child=orphan).exists()
    assert LineageEdge.objects.get(pk=edge.pk).relation == "finetune"

    officer = ["--token", Token.objects.create(user=dan).key]
    assert cli([*officer, "proposals", "list", "--json"]) == 0
    correction, addition = json.loads(capsys.readouterr().out)
    assert (correction["kind"], addition["kind"]) == ("edge_correct", "parents_add")
    assert cli([*officer, "proposals", "accept", str(correction["id"]), "--comment", "ok"]) == 0
    accepted = capsys.readouterr().out
    assert f"Accepted #{correction['id']} on {child} (accepted): changing the relation" in accepted
    assert LineageEdge.objects.get(pk=edge.pk).relation == "adapter"
    assert cli([*officer, "proposals", "reject", str(addition["id"]), "--comment", "no"]) == 0
    assert f"Rejected #{addition['id']} on {orphan} (rejected): adding parent" in (
        capsys.readouterr().out
    )
    assert not LineageEdge.objects.filter(child=orphan).exists()
