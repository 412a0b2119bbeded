"""`/api/v1/evaluation-suites/` and `/api/v1/evaluation-runs/`: define, request, read, filter,
cancel; team visibility; the JSON error shape; bounded queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from evaluators import tasks
from evaluators.models import EvaluationRun, EvaluationSuite, RunStatus
from tests.evaluators.test_checks import _fabricated_run

pytestmark = pytest.mark.django_db

SUITES = "/api/v1/evaluation-suites/"
RUNS = "/api/v1/evaluation-runs/"

SUITE_BODY = {
    "name": "tickets-fairness",
    "team": "acme",
    "dataset_version": "acme/tickets-eval@v1",
    "input_column": "text",
    "label_column": "label",
    "sensitive_columns": ["region"],
    "batch_size": 8,
    "min_group_size": 5,
    "min_quality": {"accuracy": 0.5},
    "max_fairness_gaps": {"accuracy_gap": 0.1},
    "max_regression": {"accuracy": 0.02},
    "models": ["acme/biased", "acme/fair-head"],
}


@pytest.fixture
def api(api_for, engineer):
    return api_for(engineer)


@pytest.fixture
def suite(api, models, biased_dataset):
    response = api.post(SUITES, SUITE_BODY, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_define_a_suite(suite, biased_dataset):
    assert suite["dataset_version"] == "acme/tickets-eval@v1"
    assert suite["dataset_sha256"] == biased_dataset[0].sha256
    assert suite["models"] == ["acme/biased", "acme/fair-head"]
    assert suite["max_fairness_gaps"] == {"accuracy_gap": 0.1}
    assert suite["created_by"] == "alice"


def test_suite_errors_are_4xx_with_a_message(api, suite):
    duplicate = api.post(SUITES, SUITE_BODY, format="json")
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.json()["error"]["message"]

    bad = api.post(
        SUITES,
        {**SUITE_BODY, "name": "other", "metrics": ["accuracy", "bleu"]},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"]["metrics[1]"] == ['"bleu" is not a valid choice.']

    unknown = api.post(
        SUITES, {**SUITE_BODY, "name": "other", "dataset_version": "acme/nope@v1"}, format="json"
    )
    assert unknown.status_code == 400
    assert "No dataset version acme/nope@v1" in unknown.json()["error"]["message"]

    fixed = api.patch(f"{SUITES}{suite['id']}/", {"label_column": "region"}, format="json")
    assert fixed.status_code == 400
    assert "label_column" in fixed.json()["error"]["fields"]

    tuned = api.patch(f"{SUITES}{suite['id']}/", {"min_quality": {"accuracy": 0.6}}, format="json")
    assert tuned.status_code == 200
    assert tuned.json()["min_quality"] == {"accuracy": 0.6}


def test_teams_see_only_their_suites_and_runs(api_for, outsider, suite, models, evaluate):
    run = evaluate(models["biased"], EvaluationSuite.objects.get())
    other = api_for(outsider)

    assert other.get(SUITES).json()["count"] == 0
    assert other.get(f"{SUITES}{suite['id']}/").status_code == 404
    assert other.get(RUNS).json()["count"] == 0
    assert other.get(f"{RUNS}{run.pk}/").status_code == 404
    refused = other.post(
        RUNS, {"version": "acme/biased@v1", "suite": "tickets-fairness"}, format="json"
    )
    assert refused.status_code == 400
    assert "No version acme/biased@v1 that you can see" in refused.json()["error"]["message"]
    assert api_for().get(RUNS).status_code == 401


def test_request_a_run_and_read_its_results(api, suite, models, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            RUNS, {"version": "acme/biased@v1", "suite": "tickets-fairness"}, format="json"
        )

    assert response.status_code == 201
    assert response.json()["status"] == "queued"  # the test transaction has not committed
    run = api.get(f"{RUNS}{response.json()['id']}/").json()
    assert run["status"] == "succeeded"
    assert run["version"] == "acme/biased@v1"
    assert run["queue"] == "cpu" and run["device"] == "cpu"
    assert run["artefact_digest"] == models["biased"].artefact_digest
    assert run["progress"] == {"done": 43, "total": 43, "fraction": 1.0}
    assert run["result"]["groups"]["region"]["south"]["accuracy"] == 0.3
    assert run["result"]["fairness"]["region"]["accuracy_gap"] == 0.5
    (finding,) = run["findings"]
    assert (finding["check"], finding["group"], finding["value"], finding["limit"]) == (
        "fairness",
        "south",
        0.5,
        0.1,
    )

    with django_capture_on_commit_callbacks(execute=True):
        by_id = api.post(
            RUNS,
            {"version": models["fair"].pk, "suite": suite["id"], "device": "cpu"},
            format="json",
        )
    assert by_id.status_code == 201
    fair = api.get(f"{RUNS}{by_id.json()['id']}/").json()
    assert fair["base_version"] == "acme/encoder@v1"
    assert (fair["status"], fair["findings"]) == ("succeeded", [])


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"version": "acme/none@v1", "suite": "tickets-fairness"}, "version", "No version"),
        ({"version": "acme/biased@v1", "suite": "nope"}, "suite", "No evaluation suite nope"),
        (
            {"version": "acme/biased@v1", "suite": "tickets-fairness", "device": "tpu"},
            "device",
            "not a valid choice",
        ),
        (
            {"version": "acme/biased@v1", "suite": "tickets-fairness", "priority": 1},
            "priority",
            "Unknown or read-only field",
        ),
    ],
)
def test_run_request_errors(api, suite, body, field, message):
    response = api.post(RUNS, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"]
    assert message in error["message"]


def test_an_active_run_is_returned_and_can_be_cancelled(api, suite, monkeypatch):
    monkeypatch.setattr(tasks.evaluate_run, "apply_async", lambda args, queue: None)
    body = {"version": "acme/biased@v1", "suite": "tickets-fairness"}
    first = api.post(RUNS, body, format="json")
    again = api.post(RUNS, body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    cancelled = api.post(f"{RUNS}{first.json()['id']}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    twice = api.post(f"{RUNS}{first.json()['id']}/cancel/")
    assert twice.status_code == 409
    assert "already cancelled" in twice.json()["error"]["message"]


def test_filters(api, suite, models, django_capture_on_commit_callbacks):
    for version in ("acme/biased@v1", "acme/fair-head@v1"):
        with django_capture_on_commit_callbacks(execute=True):
            api.post(RUNS, {"version": version, "suite": "tickets-fairness"}, format="json")

    def refs(**params) -> list[str]:
        return [run["version"] for run in api.get(RUNS, params).json()["results"]]

    assert sorted(refs()) == ["acme/biased@v1", "acme/fair-head@v1"]
    assert refs(version="acme/fair-head@v1") == ["acme/fair-head@v1"]
    assert refs(version=str(models["biased"].pk)) == ["acme/biased@v1"]
    assert refs(model="acme/biased") == ["acme/biased@v1"]
    assert len(refs(suite="tickets-fairness")) == 2
    assert len(refs(suite=str(suite["id"]))) == 2
    assert refs(status="failed") == []
    assert len(refs(status="succeeded")) == 2
    assert refs(evaluator="embedding-head") == ["acme/fair-head@v1"]
    assert [s["name"] for s in api.get(SUITES, {"model": "acme/biased"}).json()["results"]] == [
        "tickets-fairness"
    ]
    assert api.get(SUITES, {"dataset": "acme/other"}).json()["count"] == 0


def test_lists_do_a_bounded_number_of_queries(api, suite, models):
    suite_row = EvaluationSuite.objects.get(pk=suite["id"])

    def queries(path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(path).status_code == 200
        return len(captured)

    _fabricated_run(models["biased"], suite_row, 0.6)
    runs_few, suites_few = queries(RUNS), queries(SUITES)
    for _ in range(6):
        _fabricated_run(models["fair"], suite_row, 0.9)
    assert EvaluationRun.objects.filter(status=RunStatus.SUCCEEDED).count() == 7
    assert queries(RUNS) == runs_few
    assert queries(SUITES) == suites_few


def test_schema_documents_the_endpoints(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/evaluation-runs/{id}/cancel/" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/evaluation-suites/"]
