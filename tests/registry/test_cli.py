"""The `pedigree` client against a live server, authenticated with real tokens."""

import hashlib
import json

import pytest
from rest_framework.authtoken.models import Token

from pedigree_client.cli import main
from registry.models import DatasetVersion

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(live_server, monkeypatch, engineer):
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=engineer).key)
    return main


def test_models_list_and_versions_show(cli, capsys, make_model, make_version):
    model = make_model("acme/support-intent", task="text-classification")
    make_version(model, version="v1", risk_tier="high", intended_use="Ticket routing")
    assert cli(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "acme/support-intent" in out and "text-classification" in out
    assert cli(["versions", "show", "acme/support-intent@v1"]) == 0
    out = capsys.readouterr().out
    assert "acme/support-intent@v1" in out and "high" in out and "Ticket routing" in out
    assert cli(["versions", "show", "acme/support-intent@v1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["risk_tier"] == "high"


def test_unknown_version_is_a_clear_error(cli, capsys):
    assert cli(["versions", "show", "acme/nothing@v9"]) == 2
    assert "No version acme/nothing@v9" in capsys.readouterr().err
    assert cli(["versions", "show", "no-at-sign"]) == 2
    assert "MODEL@VERSION" in capsys.readouterr().err


def test_missing_token_and_unreachable_server(monkeypatch, capsys):
    monkeypatch.delenv("PEDIGREE_TOKEN", raising=False)
    assert main(["models", "list"]) == 2
    assert "PEDIGREE_TOKEN" in capsys.readouterr().err
    assert main(["--url", "http://127.0.0.1:9", "--token", "x", "models", "list"]) == 2
    assert "Cannot reach Pedigree" in capsys.readouterr().err


def test_bad_token_is_reported(cli, capsys):
    assert cli(["--token", "wrong", "whoami"]) == 2
    assert "Invalid token" in capsys.readouterr().err


def test_whoami(cli, capsys):
    assert cli(["whoami"]) == 0
    assert "alice (engineer); teams: acme" in capsys.readouterr().out


def test_datasets_register_hashes_here_and_is_idempotent(cli, capsys, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("text,label\nrefund please,billing\n" * 1000)
    arguments = [
        "datasets",
        "register",
        str(data),
        "--name",
        "acme/tickets",
        "--version",
        "2024-06",
        "--licence",
        "CC-BY-4.0",
        "--sensitive-attribute",
        "region",
        "--rows",
        "1000",
    ]

    assert cli(arguments) == 0
    out, err = capsys.readouterr()
    assert "Registered dataset acme/tickets@2024-06" in out
    assert "created dataset acme/tickets in team acme" in out
    assert "Hashing train.csv: " in err and "(100%)" in err  # plain lines off a terminal
    assert "\r" not in err  # no progress bar
    registered = DatasetVersion.objects.get(dataset__name="acme/tickets")
    assert registered.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    assert registered.size_bytes == data.stat().st_size
    assert registered.licence_declared == "CC-BY-4.0"
    assert registered.sensitive_attributes == ["region"] and registered.row_count == 1000
    assert registered.dataset.team.slug == "acme"

    assert cli([*arguments, "--json"]) == 0  # the same bytes again: nothing changes
    assert json.loads(capsys.readouterr().out)["id"] == registered.pk
    assert DatasetVersion.objects.count() == 1

    next_month = [*arguments[:6], "2024-07", *arguments[7:]]
    assert cli(next_month) == 0  # a new version of the existing dataset
    assert "created dataset" not in capsys.readouterr().out
    assert DatasetVersion.objects.filter(dataset=registered.dataset).count() == 2

    data.write_text("text,label\nchanged,billing\n")
    assert cli(arguments) == 2
    assert "already registered with sha256" in capsys.readouterr().err
    assert DatasetVersion.objects.count() == 2


def test_datasets_register_refuses_what_it_cannot_hash_or_register(
    cli, capsys, tmp_path, make_dataset_version, other_team, outsider
):
    common = ["--name", "acme/d", "--version", "v1", "--licence", "MIT"]
    assert cli(["datasets", "register", str(tmp_path / "absent.csv"), *common]) == 2
    assert "Nothing exists at" in capsys.readouterr().err
    assert cli(["datasets", "register", str(tmp_path), *common]) == 2
    assert "is a folder" in capsys.readouterr().err
    make_dataset_version("globex/secret", actor=outsider, owner=other_team)
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    assert cli(["datasets", "register", str(data), *common[:1], "globex/secret", *common[2:]]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli(["datasets", "register", str(data), *common, "--team", "globex"]) == 2
    assert "team" in capsys.readouterr().err
    assert not DatasetVersion.objects.filter(dataset__name="acme/d").exists()


def test_versions_update_fills_in_the_gate_metadata(cli, capsys, tmp_path, make_version):
    version = make_version(version="v1")
    limitations = tmp_path / "limitations.md"
    limitations.write_text("English tickets only.\nNot for legal advice.\n")

    ref = str(version)
    assert (
        cli(
            [
                "versions",
                "update",
                ref,
                "--intended-use",
                "Routing support tickets",
                "--known-limitations",
                f"@{limitations}",
                "--risk-tier",
                "limited",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == (
        f"Updated {ref}: --intended-use, --known-limitations, --risk-tier"
    )
    version.refresh_from_db()
    assert version.intended_use == "Routing support tickets"
    assert version.known_limitations == "English tickets only.\nNot for legal advice."
    assert version.risk_tier == "limited"

    assert cli(["versions", "update", str(version.pk), "--description", "v1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["description"] == "v1"
    assert cli(["versions", "show", ref]) == 0
    shown = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(shown) if line.startswith("Known limitations "))
    assert shown[at].endswith("  English tickets only.")
    assert shown[at + 1] == " " * shown[at].index("English") + "Not for legal advice."


def test_versions_update_failures(cli, capsys, make_version, outsider, other_team, make_model):
    version = make_version(version="v1")
    assert cli(["versions", "update", str(version)]) == 2
    assert "Nothing to update" in capsys.readouterr().err
    assert cli(["versions", "update", "acme/nothing@v1", "--risk-tier", "high"]) == 2
    assert "No version acme/nothing@v1" in capsys.readouterr().err
    assert cli(["versions", "update", str(version), "--licence", "not a licence ("]) == 2
    assert "licence" in capsys.readouterr().err.lower()
    theirs = make_version(
        make_model("globex/open", actor=outsider, owner=other_team, visibility="internal"),
        actor=outsider,
    )
    assert cli(["versions", "update", str(theirs), "--risk-tier", "high"]) == 2
    assert "HTTP 403" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli(["versions", "update", str(version), "--risk-tier", "extreme"])
    assert usage.value.code == 2


def test_a_weakening_update_is_proposed_and_compliance_concludes_it(
    cli, capsys, make_user, make_version
):
    from registry import services
    from registry.models import StagePolicy

    StagePolicy.objects.update_or_create(
        stage="production",
        risk_tier="high",
        defaults={"required_checks": ["metadata", "approvals"], "approvals_required": 1},
    )
    carol, dan = make_user("carol", compliance=True), make_user("dan", compliance=True)
    version = make_version(risk_tier="high", intended_use="Routing", known_limitations="EN")
    services.approval_record(actor=carol, version=version, stage="production")
    ref = str(version)
    assert cli(["versions", "update", ref, "--risk-tier", "minimal", "--reason", "reassessed"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Proposed, not changed: ")
    assert "lowering the risk tier from high to minimal" in out
    version.refresh_from_db()
    assert version.risk_tier == "high"

    officer = ["--token", Token.objects.create(user=dan).key]
    assert cli([*officer, "proposals", "list"]) == 0
    listed = capsys.readouterr().out
    assert ref in listed and "reassessed" in listed and "alice" in listed
    assert cli([*officer, "proposals", "list", "--version", ref, "--json"]) == 0
    (proposal,) = json.loads(capsys.readouterr().out)
    # The proposer cannot conclude it.
    assert cli(["proposals", "accept", str(proposal["id"])]) == 2
    assert "HTTP 403" in capsys.readouterr().err
    assert cli([*officer, "proposals", "accept", str(proposal["id"]), "--comment", "ok"]) == 0
    assert f"Accepted #{proposal['id']} on {ref} (accepted): risk_tier: 'high' → 'minimal'" in (
        capsys.readouterr().out
    )
    version.refresh_from_db()
    assert version.risk_tier == "minimal"
    assert cli([*officer, "proposals", "list"]) == 0
    assert ref not in capsys.readouterr().out
