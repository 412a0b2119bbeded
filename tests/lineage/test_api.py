"""The lineage API: one-call registration, graph and walk endpoints, holds, version filters."""

import copy

import pytest

from lineage import services
from lineage.models import HeldThrough, Hold, LineageEdge, TrainingDataset, TrainingRun
from lineage.services import DatasetUse
from registry.models import AuditEntry, ModelVersion, RegisteredModel
from tests.conftest import digest

pytestmark = pytest.mark.django_db

REGISTRATIONS = "/api/v1/registrations/"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code
    assert body["error"]["message"]
    return body["error"]


def row_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            RegisteredModel,
            ModelVersion,
            LineageEdge,
            TrainingRun,
            TrainingDataset,
            HeldThrough,
            AuditEntry,
        )
    }


@pytest.fixture
def tickets(make_dataset_version):
    return make_dataset_version("acme/tickets", version="2026-11")


@pytest.fixture
def registration(base, tickets, make_dataset_version):
    """The demo's registration: a feature-extraction head on the MiniLM base."""
    make_dataset_version("acme/tickets-validation", version="v1")
    return {
        "model": "acme/support-intent",
        "version": "v1",
        "create_model": {"team": "acme", "task": "text-classification"},
        "artefact_digest": digest("head"),
        "licence_declared": "Apache-2.0",
        "risk_tier": "high",
        "intended_use": "Routing support tickets",
        "parents": [
            {"version": "sentence-transformers/all-MiniLM-L6-v2@main", "relation": "adapter"}
        ],
        "training_run": {
            "method": "feature_extraction",
            "hyperparameters": {
                "head": "linear",
                "pooling": "mean",
                "epochs": 40,
                "learning_rate": 0.05,
                "batch_size": 32,
                "seed": 0,
                "optimizer": "AdamW",
                "weight_decay": 0.001,
            },
            "datasets": [
                {"dataset_version": "acme/tickets@2026-11", "role": "train"},
                {"dataset_version": "acme/tickets-validation@v1", "role": "validation"},
            ],
            "code_revision": "0123456789abcdef0123456789abcdef01234567",
            "framework_versions": {"torch": "2.13.0", "transformers": "4.57.0"},
            "compute": {
                "device_kind": "cpu",
                "device_count": 1,
                "gpu_hours": 0,
                "energy_kwh": 0.01,
            },
            "started_at": "2026-11-20T10:00:00Z",
            "finished_at": "2026-11-20T10:05:00Z",
        },
    }


def test_registration_records_everything_in_one_call(
    api_for, engineer, base, tickets, registration
):
    response = api_for(engineer).post(REGISTRATIONS, registration, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"]["ref"] == "acme/support-intent@v1"
    assert body["version"]["risk_tier"] == "high"
    assert body["parents"] == [
        {
            "id": body["parents"][0]["id"],
            "child": body["version"]["id"],
            "child_ref": "acme/support-intent@v1",
            "parent": base.pk,
            "parent_ref": str(base),
            "relation": "adapter",
            "relation_inferred": False,
            "relation_evidence": [],
            "relation_confirmed_by": None,
            "relation_confirmed_at": None,
            "parent_digest": base.artefact_digest,
            "parent_newest": False,
            "parent_unresolved": False,
            "created_by": "alice",
            "created_at": body["parents"][0]["created_at"],
        }
    ]
    run = body["training_run"]
    assert run["method"] == "feature_extraction"
    assert run["hyperparameters"]["optimizer"] == "AdamW"
    assert run["compute"] == {
        "device_kind": "cpu",
        "device_count": 1,
        "gpu_hours": 0.0,
        "energy_kwh": 0.01,
    }
    assert [(d["ref"], d["role"], d["sha256"]) for d in run["datasets"]] == [
        ("acme/tickets@2026-11", "train", tickets.sha256),
        ("acme/tickets-validation@v1", "validation", run["datasets"][1]["sha256"]),
    ]
    assert run["run_by"] == "alice"
    model = RegisteredModel.objects.get(name="acme/support-intent")
    assert model.kind == "derived" and model.task == "text-classification"
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions[-4:] == [
        "model.create",
        "version.create",
        "lineage_edge.create",
        "training_run.create",
    ]


def test_registration_under_a_held_base_is_held_at_once(
    api_for, engineer, base, registration, compliance_user
):
    hold = services.hold_place(actor=compliance_user, version=base, reason="licence withdrawn")
    response = api_for(engineer).post(REGISTRATIONS, registration, format="json")
    assert response.status_code == 201
    version_id = response.json()["version"]["id"]
    why = api_for(engineer).get(f"/api/v1/versions/{version_id}/holds/").json()
    assert why["held"] is True
    assert why["holds"][0] | {"placed_at": None} == {
        "id": hold.pk,
        "on_version_id": base.pk,
        "on": str(base),
        "inherited": True,
        "category": "other",
        "reason": "licence withdrawn",
        "reference": "",
        "placed_by": "carol",
        "placed_at": None,
    }


def test_registration_needs_create_model_for_a_new_model(api_for, engineer, registration):
    del registration["create_model"]
    before = row_counts()
    response = api_for(engineer).post(REGISTRATIONS, registration, format="json")
    assert response.status_code == 400
    assert "create_model" in error_of(response)["fields"]["model"][0]
    assert row_counts() == before


def test_registration_of_an_existing_model_ignores_create_model(
    api_for, engineer, make_model, registration
):
    make_model("acme/support-intent")
    registration["create_model"] = {"team": "acme"}
    assert api_for(engineer).post(REGISTRATIONS, registration, format="json").status_code == 201


def mutate(path: str, value):
    def apply(payload: dict, context: dict) -> None:
        target = payload
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        resolved = value(context) if callable(value) else value
        if resolved is DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = resolved

    return apply


DELETE = object()


@pytest.mark.parametrize(
    ("change", "status", "field", "fragment"),
    [
        (
            mutate("parents.0.version", "acme/nothing@v1"),
            400,
            "parents[0].version",
            "No version acme/nothing@v1 that you can see",
        ),
        (
            mutate("parents.0.version", lambda c: str(c["secret"].pk)),
            400,
            "parents[0].version",
            "that you can see",
        ),
        (
            mutate("parents.0.version", "globex/secret@v1"),
            400,
            "parents[0].version",
            "No version globex/secret@v1",
        ),
        (mutate("parents.0.relation", "merge"), 400, "parents", "at least two parents"),
        (
            mutate("parents.0.relation", "transmogrified"),
            400,
            "parents[0].relation",
            "not a valid choice",
        ),
        (
            mutate("training_run.hyperparameters.learning_rate", "0.05"),
            400,
            "training_run.hyperparameters.learning_rate",
            "not of type 'number'",
        ),
        (
            mutate("training_run.hyperparameters.epochs", [40]),
            400,
            "training_run.hyperparameters.epochs",
            "not of type 'number'",
        ),
        (
            mutate("training_run.hyperparameters", DELETE),
            400,
            "training_run.hyperparameters",
            "'head' is a required property",
        ),
        (
            mutate("training_run.method", "quantization"),
            400,
            "training_run.method",
            "cannot be made by method 'quantization'",
        ),
        (
            mutate("training_run.datasets.0.dataset_version", "acme/tickets@v999"),
            400,
            "training_run.datasets[0].dataset_version",
            "No dataset version acme/tickets@v999",
        ),
        (
            mutate("training_run.datasets.0.dataset_version", 987654),
            400,
            "training_run.datasets[0].dataset_version",
            "No dataset version 987654",
        ),
        (
            mutate("training_run.datasets.0.role", "holdout"),
            400,
            "training_run.datasets[0].role",
            "not a valid choice",
        ),
        (
            mutate("training_run.finished_at", "2026-11-19T00:00:00Z"),
            400,
            "training_run.finished_at",
            "before started_at",
        ),
        (
            mutate("training_run.code_revision", "main"),
            400,
            "training_run.code_revision",
            "full commit id",
        ),
        (
            mutate("training_run.compute.gpu_hours", -3),
            400,
            "training_run.compute.gpu_hours",
            "greater than or equal to 0",
        ),
        (mutate("training_run.colour", "blue"), 400, "training_run.colour", "Unknown field"),
        (mutate("artefact_digest", "not-a-digest"), 400, "artefact_digest", "SHA-256"),
        (mutate("version", "has space"), 400, "version", "letters, digits"),
        (mutate("create_model.team", "globex"), 400, "create_model.team", "No team 'globex'"),
        (mutate("model", lambda c: "acme/existing"), 409, "version", "pick a new label"),
    ],
)
def test_bad_registrations_are_4xx_and_write_nothing(
    api_for,
    engineer,
    registration,
    make_version_of,
    make_model,
    make_version,
    change,
    status,
    field,
    fragment,
):
    make_version(make_model("acme/existing"), version="v1")
    context = {"secret": make_version_of("globex/secret")}
    change(registration, context)
    before = row_counts()
    response = api_for(engineer).post(REGISTRATIONS, registration, format="json")
    assert response.status_code == status, response.json()
    error = error_of(response)
    assert field in error["fields"], error
    assert fragment in " ".join(error["fields"][field]), error
    assert row_counts() == before


def test_anonymous_registration_is_401(api_for, registration):
    assert api_for(None).post(REGISTRATIONS, registration, format="json").status_code == 401


def test_merge_registration_and_the_parents_endpoint(api_for, engineer, base, derive):
    left, right = derive(base), derive(base)
    api = api_for(engineer)
    response = api.post(
        REGISTRATIONS,
        {
            "model": "acme/merged",
            "version": "v1",
            "artefact_digest": digest("m"),
            "create_model": {"team": "acme"},
            "parents": [
                {"version": left.pk, "relation": "merge"},
                {"version": str(right), "relation": "merge"},
            ],
            "training_run": {
                "method": "merge",
                "hyperparameters": {"merge_method": "slerp", "weights": [0.5, 0.5]},
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    merged_id = response.json()["version"]["id"]
    parents = api.get(f"/api/v1/versions/{merged_id}/parents/").json()
    assert [(p["parent"], p["relation"]) for p in parents] == [
        (left.pk, "merge"),
        (right.pk, "merge"),
    ]
    # A cycle through the parents endpoint is refused, with the reason.
    refused = api.post(
        f"/api/v1/versions/{base.pk}/parents/",
        {"parents": [{"version": merged_id, "relation": "finetune"}]},
        format="json",
    )
    assert refused.status_code == 400
    assert "would make a cycle" in error_of(refused)["message"]


def test_parents_can_be_added_later_to_a_version_without_lineage(
    api_for, engineer, base, make_version
):
    orphan = make_version()
    response = api_for(engineer).post(
        f"/api/v1/versions/{orphan.pk}/parents/",
        {"parents": [{"version": str(base), "relation": "quantized"}]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()[0]["parent_digest"] == base.artefact_digest


def test_training_run_endpoint(api_for, engineer, base, derive, tickets):
    child = derive(base)
    api = api_for(engineer)
    url = f"/api/v1/versions/{child.pk}/training-run/"
    assert api.get(url).status_code == 404
    response = api.post(
        url,
        {
            "method": "full_finetune",
            "hyperparameters": {"learning_rate": 2e-5, "epochs": 3},
            "datasets": [{"dataset_version": tickets.pk, "role": "train"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert api.get(url).json()["datasets"][0]["sha256"] == tickets.sha256
    again = api.post(
        url, {"method": "full_finetune", "hyperparameters": {"learning_rate": 2e-5}}, format="json"
    )
    assert again.status_code == 409


@pytest.fixture
def family(base, derive, make_version_of, engineer, tickets, compliance_user):
    tuned = derive(base)
    services.training_run_record(
        actor=engineer,
        version=tuned,
        method="full_finetune",
        hyperparameters={"learning_rate": 1e-5},
        datasets=[DatasetUse(tickets, "train")],
    )
    quantized = derive(tuned, relation="quantized")
    hidden = make_version_of("globex/private-tune")
    # Compliance may record lineage across teams (globex cannot see acme's private tune).
    services.edge_create(actor=compliance_user, child=hidden, parent=tuned, relation="finetune")
    hold = services.hold_place(
        actor=compliance_user, version=tuned, reason="CVE-2026-1234", category="security"
    )
    return {"base": base, "tuned": tuned, "quantized": quantized, "hidden": hidden, "hold": hold}


def test_graph_json(api_for, engineer, family, tickets):
    f = family
    response = api_for(engineer).get(f"/api/v1/versions/{f['tuned'].pk}/lineage/")
    assert response.status_code == 200
    graph = response.json()
    nodes = {node["id"]: node for node in graph["nodes"]}
    tuned = nodes[f"v{f['tuned'].pk}"]
    assert tuned | {"holds": None} == {
        "id": f"v{f['tuned'].pk}",
        "kind": "version",
        "version_id": f["tuned"].pk,
        "generation": 0,
        "held": True,
        "holds": None,
        "focus": True,
        "hidden": False,
        "unresolved": False,
        "ref": str(f["tuned"]),
        "model_kind": "derived",
        "team": "acme",
        "stage": "development",
        "artefact_digest": f["tuned"].artefact_digest,
        "licence_declared": "Apache-2.0",
    }
    assert nodes[f"v{f['base'].pk}"]["held"] is False
    assert nodes[f"v{f['base'].pk}"]["generation"] == -1
    # Globex's private descendant is a node, but anonymous to acme: a counted placeholder.
    assert f"v{f['hidden'].pk}" not in nodes
    assert nodes["hidden-1"] == {
        "id": "hidden-1",
        "kind": "version",
        "version_id": None,
        "generation": 1,
        "held": True,
        "holds": [f["hold"].pk],
        "focus": False,
        "hidden": True,
        "ref": None,
    }
    assert graph["hidden"] == {"versions": 1, "datasets": 0, "summary": "1 version you cannot see"}
    assert nodes[f"d{tickets.pk}"]["sha256"] == tickets.sha256
    edges = {(e["source"], e["target"]): e for e in graph["edges"]}
    assert edges[(f"v{f['base'].pk}", f"v{f['tuned'].pk}")] == {
        "source": f"v{f['base'].pk}",
        "target": f"v{f['tuned'].pk}",
        "kind": "derivation",
        "relation": "finetune",
        "relation_inferred": False,
        "relation_confirmed": False,
        "parent_digest": f["base"].artefact_digest,
    }
    assert edges[(f"d{tickets.pk}", f"v{f['tuned'].pk}")]["role"] == "train"
    assert graph["holds"][0]["reason"] == "CVE-2026-1234"
    up = (
        api_for(engineer)
        .get(
            f"/api/v1/versions/{f['quantized'].pk}/lineage/", {"direction": "ancestors", "depth": 1}
        )
        .json()
    )
    assert {n["id"] for n in up["nodes"] if n["kind"] == "version"} == {
        f"v{f['quantized'].pk}",
        f"v{f['tuned'].pk}",
    }


@pytest.mark.parametrize("params", [{"depth": -1}, {"depth": "x"}, {"direction": "sideways"}])
def test_bad_graph_parameters_are_400(api_for, engineer, base, params):
    response = api_for(engineer).get(f"/api/v1/versions/{base.pk}/lineage/", params)
    assert response.status_code == 400
    assert error_of(response)["fields"]


def test_walk_endpoints(api_for, engineer, family):
    f = family
    api = api_for(engineer)

    def refs(url, **params):
        body = api.get(url, params).json()
        return sorted(version["ref"] for version in body["results"])

    quantized = f"/api/v1/versions/{f['quantized'].pk}"
    assert refs(f"{quantized}/ancestors/") == sorted([str(f["base"]), str(f["tuned"])])
    assert refs(f"{quantized}/ancestors/", depth=1) == [str(f["tuned"])]
    assert refs(f"{quantized}/roots/") == [str(f["base"])]
    assert refs(f"/api/v1/versions/{f['base'].pk}/descendants/") == sorted(
        [str(f["tuned"]), str(f["quantized"])]
    )
    path = api.get(f"{quantized}/path/", {"to": str(f["base"])}).json()
    assert [v["ref"] for v in path["versions"]] == [
        str(f["base"]),
        str(f["tuned"]),
        str(f["quantized"]),
    ]
    assert [e["relation"] for e in path["edges"]] == ["finetune", "quantized"]
    unrelated = api.get(f"{quantized}/path/", {"to": str(f["hidden"].pk)})
    assert unrelated.status_code == 400  # acme cannot see it: named as unknown


def test_walk_endpoints_hide_versions_the_caller_cannot_see(api_for, outsider, family):
    secret = family["hidden"]
    api = api_for(outsider)
    assert api.get(f"/api/v1/versions/{family['tuned'].pk}/ancestors/").status_code == 404
    refs = [v["ref"] for v in api.get(f"/api/v1/versions/{secret.pk}/ancestors/").json()["results"]]
    assert refs == [str(family["base"])]  # base is internal; acme's tuned is not


def test_trained_models_endpoint(api_for, engineer, family, tickets):
    f = family
    body = api_for(engineer).get(f"/api/v1/dataset-versions/{tickets.pk}/trained-models/").json()
    assert {(v["ref"], v["trained_directly"]) for v in body["results"]} == {
        (str(f["tuned"]), True),
        (str(f["quantized"]), False),
    }
    test_only = (
        api_for(engineer)
        .get(f"/api/v1/dataset-versions/{tickets.pk}/trained-models/", {"role": "test"})
        .json()
    )
    assert test_only["count"] == 0
    bad = api_for(engineer).get(
        f"/api/v1/dataset-versions/{tickets.pk}/trained-models/", {"role": "nonsense"}
    )
    assert bad.status_code == 400


def test_versions_filters_descends_from_and_trained_on(api_for, engineer, family, tickets):
    f = family
    api = api_for(engineer)

    def refs(**params):
        return sorted(v["ref"] for v in api.get("/api/v1/versions/", params).json()["results"])

    assert refs(descends_from=f["base"].pk) == sorted([str(f["tuned"]), str(f["quantized"])])
    assert refs(descends_from=f["tuned"].pk, stage="development") == [str(f["quantized"])]
    assert refs(trained_on=tickets.pk) == sorted([str(f["tuned"]), str(f["quantized"])])
    assert api.get("/api/v1/versions/", {"descends_from": "x"}).status_code == 400


def test_holds_api(api_for, engineer, outsider, compliance_user, base, derive):
    tuned = derive(base)
    grandchild = derive(derive(tuned))
    api = api_for(engineer)
    refused = api_for(outsider).post(
        "/api/v1/holds/", {"version": tuned.pk, "reason": "x"}, format="json"
    )
    assert refused.status_code == 400  # globex cannot even see acme's version
    placed = api.post(
        "/api/v1/holds/",
        {"version": str(tuned), "reason": "PII in outputs", "category": "safety"},
        format="json",
    )
    assert placed.status_code == 201, placed.json()
    hold = placed.json()
    assert hold["held_versions"] == 3 and hold["active"] is True and hold["placed_by"] == "alice"
    assert api.get("/api/v1/holds/", {"active": "true"}).json()["count"] == 1
    why = api.get(f"/api/v1/versions/{grandchild.pk}/holds/").json()
    assert why["holds"][0]["on"] == str(tuned) and why["holds"][0]["inherited"] is True
    lift_url = f"/api/v1/holds/{hold['id']}/lift/"
    assert api.post(lift_url, {"reason": "fixed"}, format="json").status_code == 403
    lifted = api_for(compliance_user).post(lift_url, {"reason": "fixed in v2"}, format="json")
    assert lifted.status_code == 200
    assert lifted.json()["active"] is False and lifted.json()["held_versions"] == 0
    assert api.get(f"/api/v1/versions/{grandchild.pk}/holds/").json()["held"] is False
    assert (
        api_for(compliance_user).post(lift_url, {"reason": "again"}, format="json").status_code
        == 409
    )
    assert Hold.objects.get().lift_reason == "fixed in v2"


@pytest.mark.parametrize("endpoint", ["ancestors", "descendants", "lineage", "holds"])
def test_query_counts_do_not_grow_with_the_dag(
    api_for, engineer, base, derive, endpoint, compliance_user, django_assert_max_num_queries
):
    api = api_for(engineer)
    versions = [base]
    for _ in range(2):
        versions.append(derive(versions[-1]))
    services.hold_place(actor=compliance_user, version=versions[1], reason="x")
    middle = versions[1]
    url = f"/api/v1/versions/{middle.pk}/{endpoint}/"
    api.get(url)  # warm caches
    with django_assert_max_num_queries(12) as small:
        assert api.get(url).status_code == 200
    for _ in range(25):
        versions.append(derive(versions[-1]))
    derive(versions[5], versions[20], relation="merge")
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        assert api.get(url).status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)


def test_schema_lists_lineage_endpoints(client):
    schema = client.get("/api/schema/").content.decode()
    for path in (
        "/api/v1/registrations/",
        "/api/v1/versions/{id}/lineage/",
        "/api/v1/holds/{id}/lift/",
        "/api/v1/dataset-versions/{id}/trained-models/",
    ):
        assert path in schema


@pytest.mark.parametrize("encode", [False, True])
def test_lineage_routes_take_a_ref(
    api_for, engineer, base, derive, tickets, make_version_of, encode
):
    tuned = derive(base)
    services.training_run_record(
        actor=engineer, version=tuned, method="full_finetune", hyperparameters={"learning_rate": 1}
    )
    child = derive(tuned, relation="quantized")
    ref = str(child).replace("/", "%2F").replace("@", "%40") if encode else str(child)
    tuned_ref = str(tuned).replace("/", "%2F") if encode else str(tuned)
    api = api_for(engineer)
    for route in ("lineage", "ancestors", "descendants", "roots", "parents", "holds"):
        by_id = api.get(f"/api/v1/versions/{child.pk}/{route}/")
        by_ref = api.get(f"/api/v1/versions/{ref}/{route}/")
        assert (by_id.status_code, by_ref.status_code) == (200, 200), route
        assert by_ref.json() == by_id.json(), route
    path = api.get(f"/api/v1/versions/{ref}/path/", {"to": str(base)})
    assert path.status_code == 200 and path.json()["length"] == 2
    run = api.get(f"/api/v1/versions/{tuned_ref}/training-run/")
    assert run.status_code == 200 and run.json()["version_ref"] == str(tuned)
    added = api.post(
        f"/api/v1/versions/{ref}/parents/",
        {"parents": [{"version": str(base), "relation": "quantized"}]},
        format="json",
    )
    assert added.status_code == 400  # a quantized version has one parent: refused, not 404
    hidden = make_version_of("globex/secret")
    for ref_of_hidden in (str(hidden.pk), "globex/secret@v1", "globex%2Fsecret%40v1"):
        response = api.get(f"/api/v1/versions/{ref_of_hidden}/lineage/")
        assert response.status_code == 404
        assert error_of(response) == {
            "status": 404,
            "code": "not_found",
            "message": "Not found, or you do not have access to it.",
        }


# --- dry runs, and every problem at once -------------------------------------------------------


@pytest.mark.parametrize("how", ["query", "body"])
def test_a_dry_run_checks_everything_and_writes_nothing(
    api_for, engineer, base, tickets, registration, how
):
    api = api_for(engineer)
    before = row_counts()
    if how == "query":
        response = api.post(f"{REGISTRATIONS}?dry_run=1", registration, format="json")
    else:
        response = api.post(REGISTRATIONS, {**registration, "dry_run": True}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "valid": True,
        "dry_run": True,
        "version": "acme/support-intent@v1",
        "model": {"name": "acme/support-intent", "team": "acme", "created": True},
        "artefact": {
            "digest": digest("head"),
            "size": None,
            "parameter_count": None,
            "upload": None,
        },
        "parents": [
            {"version": str(base), "relation": "adapter", "parent_digest": base.artefact_digest}
        ],
        "training_run": {
            "method": "feature_extraction",
            "datasets": [
                {"dataset_version": str(tickets), "role": "train", "sha256": tickets.sha256},
                {
                    "dataset_version": "acme/tickets-validation@v1",
                    "role": "validation",
                    "sha256": response.json()["training_run"]["datasets"][1]["sha256"],
                },
            ],
        },
    }
    assert row_counts() == before
    created = api.post(REGISTRATIONS, registration, format="json")
    assert created.status_code == 201, created.json()


def _riddled(registration: dict) -> dict:
    """A registration with one mistake in each of five places the catalogue checks."""
    registration["parents"][0]["version"] = "acme/nothing@v1"
    registration["training_run"]["datasets"][0]["dataset_version"] = "acme/tickets@v999"
    registration["training_run"]["hyperparameters"]["epochs"] = "forty"
    registration["training_run"]["code_revision"] = "main"
    registration["licence_declared"] = "Not-A-Licence-1.0"
    registration["artefact_digest"] = "not-a-digest"
    return registration


RIDDLED_FIELDS = {
    "parents[0].version",
    "training_run.datasets[0].dataset_version",
    "training_run.hyperparameters.epochs",
    "training_run.code_revision",
    "licence_declared",
    "artefact_digest",
}


@pytest.mark.parametrize("dry_run", [False, True])
def test_every_problem_is_answered_at_once(api_for, engineer, registration, dry_run):
    before = row_counts()
    response = api_for(engineer).post(
        f"{REGISTRATIONS}?dry_run={str(dry_run).lower()}", _riddled(registration), format="json"
    )
    assert response.status_code == 400
    error = error_of(response)
    assert set(error["fields"]) == RIDDLED_FIELDS
    first, _, more = error["message"].partition(" (and ")
    assert more == "5 more problems; see fields)"
    assert any(first.endswith(messages[0]) for messages in error["fields"].values())
    assert "No dataset version acme/tickets@v999" in " ".join(
        error["fields"]["training_run.datasets[0].dataset_version"]
    )
    assert row_counts() == before


def test_a_taken_label_is_reported_before_anything_else(
    api_for, engineer, make_model, make_version, registration
):
    make_version(make_model("acme/support-intent"), version="v1")
    riddled = _riddled(registration) | {"colour": "blue", "risk_tier": "extreme"}
    for path in (REGISTRATIONS, f"{REGISTRATIONS}?dry_run=1"):
        response = api_for(engineer).post(path, riddled, format="json")
        assert response.status_code == 409
        assert set(error_of(response)["fields"]) == {"version"}
        assert "pick a new label" in error_of(response)["message"]


def test_shape_errors_come_all_at_once_too(api_for, engineer, registration):
    registration["risk_tier"] = "extreme"
    registration["training_run"]["datasets"][1]["role"] = "holdout"
    registration["colour"] = "blue"
    response = api_for(engineer).post(f"{REGISTRATIONS}?dry_run=1", registration, format="json")
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {
        "risk_tier",
        "training_run.datasets[1].role",
        "colour",
    }


def test_a_dry_run_refuses_what_only_the_write_would_refuse(
    api_for, engineer, make_version_of, registration
):
    """A private model of another team holds the name: only creating it can tell."""
    make_version_of("acme/support-intent")
    for path in (f"{REGISTRATIONS}?dry_run=1", REGISTRATIONS):
        response = api_for(engineer).post(path, registration, format="json")
        assert response.status_code == 409, response.json()
        assert "already exists" in error_of(response)["message"]


def test_a_bad_dry_run_flag_is_400(api_for, engineer, registration):
    response = api_for(engineer).post(f"{REGISTRATIONS}?dry_run=maybe", registration, format="json")
    assert response.status_code == 400
    assert "dry_run" in error_of(response)["fields"]


def test_an_upload_survives_a_failed_registration_and_serves_the_next(
    api_for, engineer, registration, settings, tmp_path
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from registry.models import ArtefactUpload
    from tests.registry.test_artefacts import build_full_model

    settings.ARTEFACT_ROOTS = [tmp_path / "store"]
    settings.ARTEFACT_STORE = tmp_path / "store"
    folder = build_full_model(tmp_path / "model")
    api = api_for(engineer)
    files = {
        path.relative_to(folder).as_posix(): SimpleUploadedFile(path.name, path.read_bytes())
        for path in folder.rglob("*")
        if path.is_file()
    }
    upload = api.post("/api/v1/artefacts/uploads/", files, format="multipart").json()
    del registration["artefact_digest"]
    registration["artefact_upload"] = upload["id"]

    dry = api.post(f"{REGISTRATIONS}?dry_run=1", registration, format="json")
    assert dry.status_code == 200, dry.json()
    assert dry.json()["artefact"] == {
        "digest": upload["digest"],
        "size": upload["size"],
        "parameter_count": 16,
        "upload": upload["id"],
    }
    failing = api.post(REGISTRATIONS, _riddled(copy.deepcopy(registration)), format="json")
    assert failing.status_code == 400
    assert ArtefactUpload.objects.get(pk=upload["id"]).consumed_by is None
    reusable = api.get("/api/v1/artefacts/uploads/", {"digest": upload["digest"], "consumed": 0})
    assert [found["id"] for found in reusable.json()["results"]] == [upload["id"]]

    registered = api.post(REGISTRATIONS, registration, format="json")
    assert registered.status_code == 201, registered.json()
    assert (
        ArtefactUpload.objects.get(pk=upload["id"]).consumed_by_id
        == (registered.json()["version"]["id"])
    )
