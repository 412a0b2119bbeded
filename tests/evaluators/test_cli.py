"""`pedigree evaluate`, `pedigree evaluation` and `Client.evaluate` against a live server
(evaluations run in-process there, after each request's commit, unless a test keeps them
queued)."""

import json
import time
import types

import pytest
from rest_framework.authtoken.models import Token

import pedigree_client.client
from evaluators import services
from evaluators.models import EvaluationRun, RunStatus
from evaluators.services import runs
from pedigree_client import Client, Evaluations
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


@pytest.fixture
def worker_between_polls(no_worker, monkeypatch):
    """The test is the worker: whenever the client waits between two polls, it runs every
    queued run. The client never reads while the worker writes, so this runs on SQLite's
    shared in-memory test database (which fails a racing read at once, 'table is locked') as
    on PostgreSQL."""

    def run_queued(seconds: float) -> None:
        for run in EvaluationRun.objects.filter(status=RunStatus.QUEUED):
            services.run_execute(run_id=run.pk, worker="test-worker")

    clock = types.SimpleNamespace(monotonic=time.monotonic, sleep=run_queued)
    monkeypatch.setattr(pedigree_client.client, "time", clock)


def test_evaluate_defaults_to_the_models_suites_and_follows_queued_runs(
    cli, capsys, make_suite, models, worker_between_polls
):
    make_suite(models=["acme/fair-head"])
    make_suite("tickets-quality", models=["acme/fair-head"], max_fairness_gaps={})

    assert cli(["evaluate", "acme/fair-head@v1", "--interval", "0.1"]) == 0

    out, err = capsys.readouterr()
    runs_ = {run.suite.name: run for run in EvaluationRun.objects.all()}
    assert set(runs_) == {"tickets-fairness", "tickets-quality"}
    for name, run in runs_.items():
        assert f"Evaluation #{run.pk} of acme/fair-head@v1 on {name} is queued (queue cpu)" in err
        assert f"Evaluation #{run.pk}: queued\n" in err  # plain progress lines, no bar
        assert f"Evaluation #{run.pk}: succeeded 43 of 43 samples (100%)" in err
        assert f"Evaluation #{run.pk} of acme/fair-head@v1 on suite {name}: succeeded" in out


def test_the_python_client_requests_then_follows_the_runs(
    live_server, engineer, make_suite, models, worker_between_polls
):
    make_suite(models=["acme/fair-head"])
    make_suite("tickets-quality", models=["acme/fair-head"], max_fairness_gaps={})
    client = Client(live_server.url, Token.objects.create(user=engineer).key)

    queued = client.evaluate("acme/fair-head@v1", wait=False)

    assert isinstance(queued, Evaluations) and queued.version == "acme/fair-head@v1"
    assert [(run.suite, run.status) for run in queued.runs] == [
        ("tickets-fairness", "queued"),
        ("tickets-quality", "queued"),
    ]
    assert queued.created == tuple(run.id for run in queued.runs)
    assert not queued.finished and not queued.passed
    # The same suites again while queued: the same runs, none created.
    again = client.evaluate("acme/fair-head@v1", suites="tickets-quality", wait=False)
    assert ([run.id for run in again.runs], again.created) == ([queued.runs[1].id], ())

    finished = client.evaluate("acme/fair-head@v1", interval=0.01)

    assert finished.finished and finished.passed, [run.findings for run in finished.runs]
    assert [run.id for run in finished.runs] == [run.id for run in queued.runs]
    assert finished.created == () and finished.runs[0].samples == 43
    assert EvaluationRun.objects.filter(status=RunStatus.SUCCEEDED).count() == 2


def test_the_python_client_times_out_and_the_run_carries_on(
    live_server, engineer, suite, no_worker
):
    client = Client(live_server.url, Token.objects.create(user=engineer).key)

    with pytest.raises(TimeoutError, match=r"Evaluation #\d+ of acme/biased@v1 is still queued"):
        client.evaluate("acme/biased@v1", timeout=0.2, interval=0.05)

    assert EvaluationRun.objects.get().status == RunStatus.QUEUED


def test_evaluate_without_waiting_then_time_out_following(cli, capsys, suite, no_worker):
    assert cli(["evaluate", "acme/biased@v1", "--suite", "tickets-fairness", "--no-wait"]) == 0
    run = EvaluationRun.objects.get()
    out, err = capsys.readouterr()
    assert (
        out.strip() == f"Evaluation #{run.pk} of acme/biased@v1 on suite tickets-fairness: queued"
    )
    assert "is queued (queue cpu)." in err
    # Asked again while it is queued: the same run, not another.
    assert cli(["evaluate", "acme/biased@v1", "--suite", "tickets-fairness", "--no-wait"]) == 0
    assert "is queued (queue cpu, requested before)." in capsys.readouterr().err
    assert EvaluationRun.objects.get() == run

    follow = ["evaluation", str(run.pk), "--wait", "--timeout", "0.3", "--interval", "0.1"]
    assert cli(follow) == 2
    err = capsys.readouterr().err
    assert f"Evaluation #{run.pk} of acme/biased@v1 is still queued after the --timeout" in err
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
    err = capsys.readouterr().err
    assert "No evaluation suite that you can see applies to acme/biased" in err
    assert "`pedigree suites list` shows the suites; name them with --suite." in err
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
