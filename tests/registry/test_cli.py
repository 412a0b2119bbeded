"""The `pedigree` client against a live server, authenticated with real tokens."""

import json

import pytest
from rest_framework.authtoken.models import Token

from pedigree_client.cli import main

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
