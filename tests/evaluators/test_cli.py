"""`pedigree evaluate` and `pedigree evaluation` against a live server (evaluations run
in-process there, after each request's commit)."""

import json

import pytest
from rest_framework.authtoken.models import Token

from evaluators.models import EvaluationRun
from pedigree_client.cli import main

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(live_server, monkeypatch, engineer):
    monkeypatch.setenv("PEDIGREE_URL", live_server.url)
    monkeypatch.setenv("PEDIGREE_TOKEN", Token.objects.create(user=engineer).key)
    return main


@pytest.fixture
def suite(make_suite, models):
    return make_suite(models=["acme/biased", "acme/fair-head"])


def test_evaluate_a_biased_model_exits_1_naming_the_group(cli, capsys, suite):
    code = cli(["evaluate", "acme/biased@v1", "--suite", "tickets-fairness", "--wait"])

    out = capsys.readouterr().out
    assert code == 1
    run = EvaluationRun.objects.get()
    assert f"Evaluation #{run.pk} of acme/biased@v1 on suite tickets-fairness: succeeded" in out
    assert "ran on cpu (torch" in out
    assert "south            n=20     accuracy 0.3, selected as positive 1" in out
    assert "east             n=3      accuracy 0.6667, selected as positive 1 (small" in out
    assert "accuracy_gap 0.5" in out
    assert (
        "FAIL fairness: accuracy gap for region is 0.50 (worst group 'south' 0.30 vs best "
        "'north' 0.80), limit 0.10"
    ) in out


def test_evaluate_a_fair_model_exits_0_and_shows_json(cli, capsys, suite):
    code = cli(
        ["evaluate", "acme/fair-head@v1", "--suite", "tickets-fairness", "--wait", "--json"]
    )

    run = json.loads(capsys.readouterr().out)
    assert code == 0
    assert run["status"] == "succeeded"
    assert run["base_version"] == "acme/encoder@v1"
    assert run["findings"] == []

    assert cli(["evaluation", str(run["id"])]) == 0
    assert "meets every quality and fairness limit of the suite" in capsys.readouterr().out


def test_evaluate_errors_exit_2_with_the_message(cli, capsys, suite):
    assert cli(["evaluate", "acme/biased@v1", "--suite", "nope"]) == 2
    assert "No evaluation suite nope that you can see" in capsys.readouterr().err
    assert cli(["evaluation", "999"]) == 2
    assert "Not found" in capsys.readouterr().err
