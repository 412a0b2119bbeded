"""`pedigree evaluate` and `pedigree evaluation` against a live server (evaluations run
in-process there, after each request's commit)."""

import json
import threading
import time

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from evaluators import services
from evaluators.models import EvaluationRun
from evaluators.services import runs
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
    # east has 3 rows, under the suite's minimum of 5: never shown.
    assert "east" not in out
    assert "accuracy_gap 0.5" in out
    assert (
        "FAIL fairness: accuracy gap for region is 0.50 (worst group 'south' 0.30 vs best "
        "'north' 0.80), limit 0.10"
    ) in out


def test_evaluate_a_fair_model_exits_0_and_shows_json(cli, capsys, suite):
    code = cli(["evaluate", "acme/fair-head@v1", "--suite", "tickets-fairness", "--wait", "--json"])

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


@pytest.fixture
def no_worker(monkeypatch):
    """Requested evaluations stay queued until the test runs them, as a busy queue keeps them."""
    monkeypatch.setattr(runs, "_enqueue", lambda run: None)


def _run_when_queued(run_filter: dict) -> EvaluationRun:
    """Act as the worker: wait for the requested run, then execute it."""
    deadline = time.monotonic() + 30
    while not (run := EvaluationRun.objects.filter(**run_filter).first()):
        assert time.monotonic() < deadline, "the CLI never requested the evaluation"
        time.sleep(0.05)
    services.run_execute(run_id=run.pk, worker="test-worker")
    return run


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the CLI polls the live server while the test writes the runs: SQLite's in-memory "
    "test database fails a racing read at once ('table is locked') instead of waiting",
)
def test_evaluate_defaults_to_the_models_suites_and_follows_queued_runs(
    cli, capsys, make_suite, models, no_worker
):
    make_suite(models=["acme/fair-head"])
    make_suite("tickets-quality", models=["acme/fair-head"], max_fairness_gaps={})
    codes = []
    client = threading.Thread(
        target=lambda: codes.append(cli(["evaluate", "acme/fair-head@v1", "--interval", "0.1"]))
    )
    client.start()
    try:
        _run_when_queued({"suite__name": "tickets-fairness"})
        _run_when_queued({"suite__name": "tickets-quality"})
    finally:
        client.join(timeout=120)
    out, err = capsys.readouterr()
    assert codes == [0], err
    runs_ = {run.suite.name: run for run in EvaluationRun.objects.all()}
    assert set(runs_) == {"tickets-fairness", "tickets-quality"}
    for name, run in runs_.items():
        assert f"Evaluation #{run.pk} of acme/fair-head@v1 on {name} is queued" in err
        assert f"Evaluation #{run.pk}: queued\n" in err  # plain progress lines, no bar
        assert f"Evaluation #{run.pk}: succeeded 43 of 43 samples (100%)" in err
        assert f"Evaluation #{run.pk} of acme/fair-head@v1 on suite {name}: succeeded" in out


def test_evaluate_without_waiting_then_time_out_following(cli, capsys, suite, no_worker):
    assert cli(["evaluate", "acme/biased@v1", "--suite", "tickets-fairness", "--no-wait"]) == 0
    run = EvaluationRun.objects.get()
    out, err = capsys.readouterr()
    assert (
        out.strip() == f"Evaluation #{run.pk} of acme/biased@v1 on suite tickets-fairness: queued"
    )
    assert "is queued (queue cpu)" in err

    follow = ["evaluation", str(run.pk), "--wait", "--timeout", "0.3", "--interval", "0.1"]
    assert cli(follow) == 2
    err = capsys.readouterr().err
    assert f"Evaluation #{run.pk} is still queued after the --timeout" in err
    assert f"`pedigree evaluation {run.pk} --wait`" in err

    services.run_execute(run_id=run.pk, worker="test-worker")
    assert cli([*follow, "--json"]) == 1  # finished: breaks the fairness limit
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"


def test_evaluate_with_several_suites_prints_a_json_list(cli, capsys, make_suite, models):
    make_suite(models=["acme/fair-head"])
    make_suite("tickets-quality", max_fairness_gaps={})
    code = cli(
        [
            "evaluate",
            "acme/fair-head@v1",
            "--suite",
            "tickets-fairness",
            "--suite",
            "tickets-quality",
            "--json",
        ]
    )
    answer = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [run["suite"] for run in answer] == ["tickets-fairness", "tickets-quality"]


def test_evaluate_needs_a_suite_when_none_is_attached(cli, capsys, make_suite, models):
    make_suite(models=["acme/fair-head"])
    assert cli(["evaluate", "acme/biased@v1"]) == 2
    assert "No evaluation suite is attached to acme/biased" in capsys.readouterr().err
    assert cli(["evaluate", "acme/nothing@v1"]) == 2
    assert "No version acme/nothing@v1" in capsys.readouterr().err
    assert not EvaluationRun.objects.exists()


def test_suites_list(cli, capsys, make_suite, models):
    make_suite(models=["acme/fair-head", "acme/worse-head"])
    make_suite("tickets-quality")
    assert cli(["suites", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TASK", "DATASET", "TEAM", "MODELS"]
    assert any(
        "tickets-fairness" in line and "acme/fair-head, acme/worse-head" in line for line in lines
    )
    assert any("tickets-quality" in line and "(none attached)" in line for line in lines)

    assert cli(["suites", "list", "--model", "acme/fair-head", "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["tickets-fairness"]
    assert cli(["suites", "list", "--model", "acme/biased"]) == 0
    assert capsys.readouterr().out.strip() == "No evaluation suites you can see for acme/biased."
