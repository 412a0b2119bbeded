"""Query budgets of the everyday calls: one registration with its model, parents, run, datasets
and audit entries, and reading versions and the catalogue lists back (`DESIGN.md`: constant
query counts). Each budget holds whatever the number of parents, datasets or rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry.models import AuditEntry
from tests.conftest import digest

pytestmark = pytest.mark.django_db

REGISTRATION_BUDGET = 25
READ_BUDGET = 3


@pytest.fixture
def register(api_for, engineer, make_version, make_dataset_version):
    """Register a new model's first version distilled from `parents` teachers, its run trained
    on `datasets` dataset versions; return the response and the queries it ran."""
    api = api_for(engineer)
    made = iter(range(10**6))

    def run(*, parents: int, datasets: int):
        n = next(made)
        teachers = [make_version() for _ in range(parents)]
        data = [make_dataset_version(f"acme/data-{n}-{i}") for i in range(datasets)]
        body = {
            "model": f"acme/student-{n}",
            "version": "v1",
            "create_model": {"team": "acme"},
            "artefact_digest": digest(f"student-{n}"),
            "licence_declared": "Apache-2.0",
            "parents": [{"version": str(t), "relation": "distillation"} for t in teachers],
            "training_run": {
                "method": "distillation",
                "hyperparameters": {"temperature": 2.0, "learning_rate": 0.001, "epochs": 3},
                "datasets": [
                    {"dataset_version": f"{d.dataset.name}@{d.version}", "role": "train"}
                    for d in data
                ],
            },
        }
        with CaptureQueriesContext(connection) as queries:
            response = api.post("/api/v1/registrations/", body, format="json")
        assert response.status_code == 201, response.json()
        assert len(response.json()["parents"]) == parents
        assert len(response.json()["training_run"]["datasets"]) == datasets
        return len(queries.captured_queries)

    return run


def test_a_registration_runs_a_small_constant_number_of_queries(register, make_version):
    register(parents=1, datasets=1)  # warm the per-process caches (content types, plug-ins)
    small = register(parents=1, datasets=1)
    assert small <= REGISTRATION_BUDGET
    assert register(parents=5, datasets=1) == small
    assert register(parents=1, datasets=5) == small
    for _ in range(40):
        make_version()
    assert register(parents=5, datasets=5) == small


def test_a_registration_appends_one_audit_entry_per_change_in_few_inserts(register):
    before = AuditEntry.objects.count()
    register(parents=4, datasets=3)
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True)[before:])
    # 4 teacher versions and 3 dataset versions, each with its own entries, then the registration
    registration = actions[-7:]
    assert registration == [
        "model.create",
        "version.create",
        *["lineage_edge.create"] * 4,
        "training_run.create",
    ]


def test_a_registration_inserts_its_audit_entries_at_once_and_seals_them_once(
    api_for, engineer, make_version, make_dataset_version, django_capture_on_commit_callbacks
):
    api = api_for(engineer)
    with django_capture_on_commit_callbacks(execute=True):  # as if each had committed
        teachers = [make_version() for _ in range(3)]
        data = make_dataset_version("acme/tickets")
    body = {
        "model": "acme/student",
        "version": "v1",
        "create_model": {"team": "acme"},
        "artefact_digest": digest("student"),
        "parents": [{"version": str(t), "relation": "distillation"} for t in teachers],
        "training_run": {
            "method": "distillation",
            "hyperparameters": {"temperature": 2.0},
            "datasets": [{"dataset_version": f"{data.dataset.name}@v1", "role": "train"}],
        },
    }
    before = AuditEntry.objects.count()
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = api.post("/api/v1/registrations/", body, format="json")
    assert response.status_code == 201, response.json()
    audit_inserts = [
        q
        for q in queries.captured_queries
        if "INSERT INTO" in q["sql"] and "auditentry" in q["sql"]
    ]
    assert len(audit_inserts) == 1
    # model, version, 3 edges, run: all sealed by the one callback run after the commit
    assert AuditEntry.objects.count() == before + 6
    assert not AuditEntry.objects.filter(seq__isnull=True).exists()
    # Sealed as the registration's last step, in its own transaction: the callback that seals
    # after other commits finds nothing to do, and no second transaction is begun.
    assert sum("seal" in getattr(c, "__qualname__", "") for c in callbacks) == 1
    assert sum(q["sql"].startswith(("BEGIN", "COMMIT")) for q in queries.captured_queries) <= 2
    # With its seal, still in the budget.
    assert len(queries.captured_queries) <= REGISTRATION_BUDGET


def test_a_registration_commits_its_audit_entries_sealed(api_for, engineer, make_version):
    """No window in which a registration's entries sit committed but unsealed: the commit
    callbacks are not run here, and the entries are chained already."""
    parent = make_version()
    before = AuditEntry.objects.filter(seq__isnull=True).count()
    response = api_for(engineer).post(
        "/api/v1/registrations/",
        {
            "model": "acme/sealed",
            "version": "v1",
            "create_model": {"team": "acme"},
            "artefact_digest": digest("sealed"),
            "parents": [{"version": str(parent), "relation": "finetune"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert before > 0  # the parent's entries, whose commit callbacks never ran, are unsealed
    assert not AuditEntry.objects.filter(seq__isnull=True).exists()  # chained too, in order
    model_entries = AuditEntry.objects.filter(object_repr__startswith="acme/sealed")
    assert model_entries.exists() and not model_entries.filter(hash__isnull=True).exists()


def _reads(api, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.json()
    return len(queries.captured_queries)


@pytest.mark.parametrize(
    ("url", "budget"),
    [
        ("/api/v1/versions/", READ_BUDGET),
        ("/api/v1/versions/?stage=development&ordering=-registered_at", READ_BUDGET),
        ("/api/v1/models/", READ_BUDGET),
        ("/api/v1/datasets/", READ_BUDGET),
        ("/api/v1/dataset-versions/", READ_BUDGET),
        # The token, the page's count, its rows, and their members (one prefetch).
        ("/api/v1/teams/", READ_BUDGET + 1),
    ],
)
def test_lists_read_in_three_queries_whatever_their_length(
    api_for, engineer, make_version, make_dataset_version, url, budget
):
    api = api_for(engineer)
    make_version()
    make_dataset_version()
    _reads(api, url)
    small = _reads(api, url)
    assert small <= budget
    for _ in range(15):
        make_version()
        make_dataset_version()
    assert _reads(api, url) == small


def test_a_version_reads_in_three_queries(api_for, engineer, register, make_version):
    api = api_for(engineer)
    version = make_version()
    for ref in (version.pk, f"{version.model.name}@{version.version}"):
        _reads(api, f"/api/v1/versions/{ref}/")
        assert _reads(api, f"/api/v1/versions/{ref}/") <= READ_BUDGET
