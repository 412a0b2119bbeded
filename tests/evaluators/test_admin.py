"""The admin: a run's per-group results as a table and a server-side SVG chart, the dashboard
panel of failing fairness and latest evaluations, suites edited through the services."""

import pytest
from django.contrib.auth.models import Permission

from evaluators.models import EvaluationSuite
from registry.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(make_user):
    user = make_user("olivia", compliance=True, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["registry", "evaluators"]).exclude(
            codename__startswith="delete_"
        )
    )
    return user


@pytest.fixture
def biased_run(models, make_suite, evaluate):
    return evaluate(models["biased"], make_suite(models=["acme/biased"]))


def test_run_page_shows_groups_as_a_table_and_a_chart(client, officer, biased_run):
    client.force_login(officer)

    page = client.get(f"/admin/evaluators/evaluationrun/{biased_run.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert '<table class="groups" data-attribute="region">' in html
    assert "<tr><td>south</td><td>20</td><td>0.3</td>" in html
    # The group of 3 rows (under the suite's minimum of 5) is neither shown nor measured.
    assert "<td>east</td>" not in html and ">east<" not in html
    assert "minimum group size (5 rows) are neither shown nor compared" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="group-chart"' in html
    assert "Accuracy by region (gap 0.500)" in html
    svg = html[html.index('<svg xmlns="http://www.w3.org/2000/svg" class="group-chart"') :]
    assert "<script" not in svg[: svg.index("</svg>")]
    assert "accuracy gap for region is 0.50 (worst group &#x27;south&#x27; 0.30" in html


def test_chart_escapes_group_names(client, officer, biased_run):
    result = biased_run.result
    result.groups = {"region": {"<script>x</script>": result.groups["region"]["north"]}}
    result.save()
    client.force_login(officer)

    html = client.get(f"/admin/evaluators/evaluationrun/{biased_run.pk}/change/").content
    assert b"<script>x</script>" not in html
    assert b"&lt;script&gt;x&lt;/script&gt;" in html


def test_dashboard_panel_lists_failing_fairness_and_latest_runs(client, officer, biased_run):
    client.force_login(officer)

    html = client.get("/admin/").content.decode()

    assert "<h2>Evaluations</h2>" in html
    assert "Failing fairness (1)" in html
    assert f"evaluationrun/{biased_run.pk}/change/" in html
    assert "worst group &#x27;south&#x27;" in html
    assert "Latest evaluations" in html


def test_suite_limits_are_edited_through_the_service(client, officer, biased_run):
    suite = EvaluationSuite.objects.get()
    client.force_login(officer)
    url = f"/admin/evaluators/evaluationsuite/{suite.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        name: form[name].value() if form[name].value() is not None else "" for name in form.fields
    }
    data["models"] = [m.pk for m in suite.models.all()]
    data["min_quality"] = '{"accuracy": 0.7}'

    response = client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    suite.refresh_from_db()
    assert suite.min_quality == {"accuracy": 0.7}
    entry = AuditEntry.objects.get(action="evaluation_suite.update")
    assert entry.actor == officer
    assert entry.after["min_quality"] == {"accuracy": 0.7}


def test_version_page_shows_its_evaluations(client, officer, biased_run, models):
    client.force_login(officer)

    html = client.get(f"/admin/registry/modelversion/{models['biased'].pk}/change/").content
    html = html.decode()

    assert '<fieldset class="module evaluations-panel">' in html
    assert f"evaluationrun/{biased_run.pk}/change/" in html
    assert "accuracy gap for region is 0.50" in html
    unevaluated = client.get(f"/admin/registry/modelversion/{models['fair'].pk}/change/")
    assert "No evaluation suite is attached to acme/fair-head" in unevaluated.content.decode()


def test_suite_form_shows_refused_limits_and_writes_nothing(client, officer, biased_run):
    suite = EvaluationSuite.objects.get()
    before = suite.min_quality
    client.force_login(officer)
    url = f"/admin/evaluators/evaluationsuite/{suite.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: "" if form[name].value() is None else form[name].value() for name in form.fields}
    data["models"] = [m.pk for m in suite.models.all()]
    data["min_quality"] = '{"telepathy": 0.7}'

    response = client.post(url, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "unknown metric(s) telepathy" in " ".join(errors["min_quality"])
    suite.refresh_from_db()
    assert suite.min_quality == before
    assert not AuditEntry.objects.filter(action="evaluation_suite.update").exists()


def test_version_page_summarises_evaluations_and_compare_shows_metrics(
    client, officer, models, make_suite, evaluate
):
    suite = make_suite(models=["acme/biased", "acme/biased-lora"])
    evaluate(models["biased"], suite)
    evaluate(models["lora"], suite)
    client.force_login(officer)

    page = client.get(f"/admin/registry/modelversion/{models['biased'].pk}/change/")
    html = page.content.decode()
    summary = html[html.index('class="evaluation-summary"') : html.index("</section>")]
    # The worst group highlighted, fairness against its limit, three significant digits.
    assert "Worst region: <mark>south</mark>" in summary
    assert '<tr class="failing"><td>accuracy_gap (region)</td><td>0.5</td><td>≤ ' in summary
    assert '<tr class="worst"><td>south</td><td>20</td><td>0.3</td>' in summary
    assert "<details" in summary

    compared = client.get(
        f"/admin/registry/modelversion/{models['lora'].pk}/compare/",
        {"with": models["biased"].pk},
    )
    sections = {section["title"]: section["rows"] for section in compared.context["sections"]}
    metrics = {row.label: row for row in sections["Evaluation metrics"]}
    south = metrics["tickets-fairness · accuracy · region=south"]
    # The LoRA adapter starts from zero, so it scores as its base: no delta, not marked.
    assert south.left == south.right == "0.3" and not south.delta and not south.differs
    assert {row.label for row in sections["Parents"]} == {"acme/biased@v1"}

    history = client.get(f"/admin/registry/modelversion/{models['lora'].pk}/history/")
    assert "tickets-fairness: succeeded" in history.content.decode()
