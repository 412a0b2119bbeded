"""`POST /api/v1/versions/{ref}/evaluations/`: evaluate a version on several suites at once,
answered 202 before any evaluation runs; with no broker the evaluation runs in a background
thread of the web process."""

import threading

import pytest

from evaluators import services
from evaluators.models import EvaluationRun, RunStatus

URL = "/api/v1/versions/{ref}/evaluations/"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code
    return body["error"]


@pytest.fixture
def api(api_for, engineer):
    return api_for(engineer)


@pytest.fixture
def suites(make_suite, models):
    return [
        make_suite("tickets-fairness", models=["acme/biased", "acme/fair-head"]),
        make_suite("tickets-strict", models=["acme/biased"], min_quality={"accuracy": 0.9}),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("ref", ["acme/biased@v1", "acme%2Fbiased%40v1", "id"])
def test_every_suite_of_the_model_is_requested_at_once(api, models, suites, ref):
    ref = models["biased"].pk if ref == "id" else ref
    response = api.post(URL.format(ref=ref), {}, format="json")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["version"] == "acme/biased@v1"
    assert [(run["suite"], run["status"], run["created"]) for run in body["runs"]] == [
        ("tickets-fairness", "queued", True),
        ("tickets-strict", "queued", True),
    ]
    assert sorted(run["id"] for run in body["runs"]) == sorted(
        EvaluationRun.objects.values_list("pk", flat=True)
    )
    again = api.post(URL.format(ref=ref), {"suites": ["tickets-strict"]}, format="json")
    assert again.status_code == 202
    (run,) = again.json()["runs"]
    assert (run["id"], run["created"]) == (body["runs"][1]["id"], False)


@pytest.mark.django_db
def test_named_suites_and_the_device(api, models, suites):
    response = api.post(
        URL.format(ref="acme/fair-head@v1"),
        {"suites": [str(suites[0].pk)], "device": "cuda"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    (run,) = response.json()["runs"]
    assert (run["suite"], run["queue"], run["device_requested"]) == (
        "tickets-fairness",
        "gpu",
        "cuda",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ref", "body", "status", "fields"),
    [
        (
            "acme/biased@v1",
            {"suites": ["nope", "tickets-strict", "gone"]},
            400,
            {
                "suites[0]",
                "suites[2]",
            },
        ),
        ("acme/biased@v1", {"suites": []}, 400, {"suites"}),
        ("acme/biased@v1", {"device": "tpu", "colour": "blue"}, 400, {"device", "colour"}),
        ("acme/encoder@v1", {}, 400, {"suites"}),
        ("acme/none@v1", {}, 404, None),
        ("acme@v1", {}, 404, None),
    ],
)
def test_refusals(api, models, suites, ref, body, status, fields):
    response = api.post(URL.format(ref=ref), body, format="json")
    assert response.status_code == status, response.json()
    error = error_of(response)
    if fields is not None:
        assert set(error["fields"]) == fields
    assert not EvaluationRun.objects.exists()


@pytest.mark.django_db
def test_all_or_nothing(api, models, suites, make_suite, make_dataset_version):
    """One suite that cannot judge the version refuses the whole request, naming that suite."""
    tabular = make_suite(
        "tabular",
        models=["acme/biased"],
        task="tabular-classification",
        input_column="",
        feature_columns=["text"],
    )
    response = api.post(
        URL.format(ref="acme/biased@v1"),
        {"suites": ["tickets-fairness", tabular.name]},
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert set(error_of(response)["fields"]) == {"suites[1]"}
    assert not EvaluationRun.objects.exists()


@pytest.mark.django_db
def test_other_teams_cannot_see_or_request(api_for, outsider, models, suites):
    response = api_for(outsider).post(URL.format(ref="acme/biased@v1"), {}, format="json")
    assert response.status_code == 404
    assert error_of(response)["message"] == "Not found, or you do not have access to it."
    assert api_for().post(URL.format(ref="acme/biased@v1"), {}, format="json").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_with_no_broker_the_answer_does_not_wait_for_the_evaluation(
    api, models, suites, settings, monkeypatch
):
    """The embedded default: the evaluation starts in a thread after the commit, and the
    request has answered while it still runs."""
    settings.PEDIGREE_EVALUATION_INLINE = False
    started, release = threading.Event(), threading.Event()
    ran: list[tuple[int, str]] = []

    def blocking_execute(*, run_id: int, worker: str) -> str:
        ran.append((run_id, threading.current_thread().name))
        started.set()
        assert release.wait(60)
        return "succeeded"

    monkeypatch.setattr(services, "run_execute", blocking_execute)
    try:
        response = api.post(
            URL.format(ref="acme/fair-head@v1"), {"suites": ["tickets-fairness"]}, format="json"
        )
        assert response.status_code == 202, response.json()
        (run,) = response.json()["runs"]
        assert started.wait(30), "the evaluation never started"
        assert not release.is_set()  # still running: the answer did not wait for it
        assert ran == [(run["id"], f"pedigree-evaluation-{run['id']}")]
        assert EvaluationRun.objects.get(pk=run["id"]).status == RunStatus.QUEUED
    finally:
        release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("pedigree-evaluation-"):
            thread.join(30)
            assert not thread.is_alive()
