"""Lineage services: edges (merges, rules, cycles), training runs, holds and their propagation."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from lineage import selectors, services
from lineage.models import HeldThrough, Hold, LineageEdge, TrainingDataset, TrainingRun
from lineage.services import DatasetUse, ParentSpec
from registry.errors import Conflict, InvalidInput, PermissionRefused
from registry.models import AuditEntry, ModelVersion
from tests.conftest import digest

pytestmark = pytest.mark.django_db


def test_merge_records_every_parent_with_its_pinned_digest(base, derive, engineer):
    left, right = derive(base), derive(base, relation="adapter")
    merged = derive(left, right, relation="merge")
    edges = list(selectors.parent_edges(merged))
    assert [(e.parent, e.relation) for e in edges] == [(left, "merge"), (right, "merge")]
    assert [e.parent_digest for e in edges] == [left.artefact_digest, right.artefact_digest]
    assert set(selectors.ancestors_of(engineer, merged)) == {left, right, base}
    audit = AuditEntry.objects.filter(action="lineage_edge.create").order_by("-id")[:2]
    assert {entry.after["parent_digest"] for entry in audit} == {
        left.artefact_digest,
        right.artefact_digest,
    }


@pytest.mark.parametrize(
    ("relations", "fragment"),
    [
        (["merge"], "at least two parents"),
        (["merge", "finetune"], "must all have relation 'merge'"),
        (["finetune", "finetune"], "Only merges"),
        (["adapter", "quantized"], "Only merges"),
        (["distillation", "finetune", "finetune"], "at most one student"),
        (["distillation", "adapter"], "at most one student"),
    ],
)
def test_inconsistent_parent_sets_are_refused(
    base, derive, make_version, engineer, relations, fragment
):
    parents = [base, *(derive(base) for _ in relations[1:])]
    child = make_version()
    with pytest.raises(InvalidInput) as error:
        services.edges_create(
            actor=engineer,
            child=child,
            parents=[ParentSpec(p, r) for p, r in zip(parents, relations, strict=True)],
        )
    assert fragment in error.value.message
    assert not LineageEdge.objects.filter(child=child).exists()


@pytest.mark.parametrize(
    "relations",
    [
        ["distillation"],
        ["distillation", "distillation"],
        ["distillation", "finetune"],
        ["merge", "merge", "merge"],
        ["quantized"],
    ],
)
def test_consistent_parent_sets_are_accepted(base, derive, make_version, engineer, relations):
    parents = [base, *(derive(base) for _ in relations[1:])]
    child = make_version()
    services.edges_create(
        actor=engineer,
        child=child,
        parents=[ParentSpec(p, r) for p, r in zip(parents, relations, strict=True)],
    )
    assert LineageEdge.objects.filter(child=child).count() == len(relations)


def test_a_merge_cannot_be_built_one_edge_at_a_time(base, derive, make_version, engineer):
    child = make_version()
    with pytest.raises(InvalidInput, match="at least two parents"):
        services.edge_create(actor=engineer, child=child, parent=base, relation="merge")


def test_self_edges_are_refused_by_service_and_database(base, engineer):
    with pytest.raises(InvalidInput, match="cannot be its own parent"):
        services.edge_create(actor=engineer, child=base, parent=base, relation="finetune")
    with pytest.raises(IntegrityError), transaction.atomic():
        LineageEdge.objects.create(
            child=base,
            parent=base,
            relation="finetune",
            parent_digest=digest(1),
            created_by=engineer,
        )


def test_duplicate_edges_are_refused_by_service_and_database(base, derive, engineer):
    child = derive(base)
    with pytest.raises(Conflict, match="already a parent"):
        services.edge_create(actor=engineer, child=child, parent=base, relation="finetune")
    with pytest.raises(IntegrityError), transaction.atomic():
        LineageEdge.objects.create(
            child=child,
            parent=base,
            relation="adapter",
            parent_digest=digest(1),
            created_by=engineer,
        )


@pytest.mark.parametrize("length", [1, 2, 6])
def test_cycles_are_refused_and_nothing_is_written(chain, engineer, length):
    versions = chain(length)
    edges, audit = LineageEdge.objects.count(), AuditEntry.objects.count()
    with pytest.raises(InvalidInput, match="would make a cycle"):
        services.edge_create(
            actor=engineer, child=versions[0], parent=versions[-1], relation="finetune"
        )
    assert (LineageEdge.objects.count(), AuditEntry.objects.count()) == (edges, audit)


def test_a_cycle_through_a_merge_is_refused(base, derive, make_version, engineer):
    other = make_version()
    merged = derive(base, other, relation="merge")
    tuned = derive(merged)
    with pytest.raises(InvalidInput, match="would make a cycle"):
        services.edge_create(actor=engineer, child=other, parent=tuned, relation="finetune")


def test_parents_must_be_visible_to_the_actor(make_version, make_version_of, engineer):
    secret = make_version_of("globex/secret")
    child = make_version()
    with pytest.raises(InvalidInput, match="No version globex/secret@v1 that you can see"):
        services.edge_create(
            actor=engineer, child=child, parent="globex/secret@v1", relation="finetune"
        )
    with pytest.raises(InvalidInput):
        services.edge_create(actor=engineer, child=child, parent=secret, relation="finetune")


def test_parents_may_be_named_by_hub_revision(make_model, make_version, engineer):
    revision = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
    hub = make_model("sentence-transformers/all-MiniLM-L12-v2", kind="upstream")
    upstream = make_version(hub, version="main", hub_repo_id=hub.name, hub_revision=revision)
    child = make_version()
    edge = services.edge_create(
        actor=engineer, child=child, parent=f"{hub.name}@{revision}", relation="adapter"
    )
    assert edge.parent == upstream


def test_only_the_childs_team_records_its_lineage(base, make_version, outsider, engineer):
    child = make_version()
    with pytest.raises(PermissionRefused, match="not a member of team 'acme'"):
        services.edge_create(actor=outsider, child=child, parent=base, relation="finetune")


def test_lineage_is_frozen_after_development_except_for_compliance(
    base, make_version, engineer, compliance_user
):
    child = make_version()
    ModelVersion.objects.filter(pk=child.pk).update(stage="production")
    with pytest.raises(PermissionRefused, match="frozen"):
        services.edge_create(actor=engineer, child=child, parent=base, relation="finetune")
    edge = services.edge_create(
        actor=compliance_user, child=child, parent=base, relation="finetune"
    )
    assert edge.created_by == compliance_user


# --- Holds ------------------------------------------------------------------------------------


def held_ids(hold: Hold) -> set[int]:
    return set(HeldThrough.objects.filter(hold=hold).values_list("version_id", flat=True))


def test_a_hold_holds_the_version_and_every_descendant(base, chain, derive, compliance_user):
    versions = chain(3)
    side = derive(versions[1])
    merged = derive(versions[3], side, relation="merge")
    unrelated = derive()
    hold = services.hold_place(
        actor=compliance_user,
        version=versions[1],
        reason="Upstream licence withdrawn",
        category="licence",
    )
    assert held_ids(hold) == {v.pk for v in (*versions[1:], side, merged)}
    assert unrelated.pk not in held_ids(hold)
    assert base.pk not in held_ids(hold)
    entry = AuditEntry.objects.get(action="hold.place")
    assert entry.after["held_versions"] == 5
    assert entry.after["reason"] == "Upstream licence withdrawn"


def test_hold_propagation_is_one_statement_whatever_the_dag_size(
    base, chain, compliance_user, django_assert_num_queries
):
    small_root, large_root = chain(2)[1], chain(25)[1]
    services.hold_place(actor=compliance_user, version=base, reason="warms the user's caches")
    with CaptureQueriesContext(connection) as small:
        small_hold = services.hold_place(actor=compliance_user, version=small_root, reason="x")
    with django_assert_num_queries(len(small.captured_queries)) as large:
        large_hold = services.hold_place(actor=compliance_user, version=large_root, reason="x")
    assert len(held_ids(large_hold)) == 25 > len(held_ids(small_hold)) == 2
    inserts = [
        q["sql"]
        for q in large.captured_queries
        if "INSERT INTO" in q["sql"] and "heldthrough" in q["sql"]
    ]
    assert len(inserts) == 1 and "WITH RECURSIVE" in inserts[0]


def test_new_descendants_of_a_held_version_are_held(base, chain, derive, compliance_user):
    versions = chain(2)
    hold = services.hold_place(actor=compliance_user, version=versions[1], reason="security")
    later = derive(versions[2])
    grandchild = derive(later)
    assert {later.pk, grandchild.pk} <= held_ids(hold)
    assert [h.pk for h in selectors.active_holds_on(grandchild.pk)] == [hold.pk]


def test_linking_an_existing_subtree_under_a_held_version_holds_it(
    base, derive, make_version, compliance_user, engineer
):
    held_base = derive(base)
    hold = services.hold_place(actor=compliance_user, version=held_base, reason="security")
    orphan = make_version()
    below = derive(orphan)
    services.edge_create(actor=engineer, child=orphan, parent=held_base, relation="finetune")
    assert {orphan.pk, below.pk} <= held_ids(hold)


def test_lifting_releases_inherited_holds_but_not_other_holds(
    base, chain, compliance_user, engineer
):
    versions = chain(3)
    upper = services.hold_place(actor=compliance_user, version=versions[1], reason="licence")
    lower = services.hold_place(actor=engineer, version=versions[2], reason="bias found")
    services.hold_lift(actor=compliance_user, hold=upper, reason="licence restored")
    assert held_ids(upper) == set()
    assert list(selectors.active_holds_on(versions[1].pk)) == []
    assert list(selectors.active_holds_on(versions[3].pk)) == [lower]
    upper.refresh_from_db()
    assert upper.lifted_by == compliance_user and upper.lifted_at and not upper.active
    entry = AuditEntry.objects.get(action="hold.lift")
    assert entry.after["released_versions"] == 3
    with pytest.raises(Conflict, match="already lifted"):
        services.hold_lift(actor=compliance_user, hold=upper, reason="again")


def test_hold_permissions(base, derive, engineer, outsider, compliance_user):
    ours = derive(base)
    with pytest.raises(PermissionRefused, match="Only compliance staff or members"):
        services.hold_place(actor=outsider, version=ours, reason="I dislike it")
    hold = services.hold_place(actor=engineer, version=ours, reason="data leak suspected")
    with pytest.raises(PermissionRefused, match="Only compliance staff can lift"):
        services.hold_lift(actor=engineer, hold=hold, reason="false alarm")
    with pytest.raises(InvalidInput, match="Say why"):
        services.hold_place(actor=compliance_user, version=ours, reason="   ")
    with pytest.raises(InvalidInput, match="Unknown category"):
        services.hold_place(actor=compliance_user, version=ours, reason="x", category="vibes")
    assert Hold.objects.count() == 1


# --- Training runs ----------------------------------------------------------------------------


def test_training_run_pins_datasets_and_keeps_unknown_hyperparameters(
    base, derive, engineer, make_dataset_version
):
    tickets = make_dataset_version("acme/tickets")
    held_out = make_dataset_version("acme/tickets-test")
    child = derive(base, relation="adapter")
    run = services.training_run_record(
        actor=engineer,
        version=child,
        method="lora",
        hyperparameters={
            "rank": 8,
            "alpha": 16,
            "target_modules": ["query", "value"],
            "learning_rate": 2e-4,
            "my_custom_knob": "kept",
        },
        datasets=[DatasetUse("acme/tickets@v1", "train"), DatasetUse(held_out.pk, "test")],
        code_revision="a" * 40,
        framework_versions={"torch": "2.4.0", "peft": "0.13.2"},
        device_kind="NVIDIA H100",
        device_count=1,
        gpu_hours=0.5,
        energy_kwh=0.35,
    )
    assert run.hyperparameters["my_custom_knob"] == "kept"
    links = {(d.dataset_version_id, d.role, d.sha256) for d in run.datasets.all()}
    assert links == {(tickets.pk, "train", tickets.sha256), (held_out.pk, "test", held_out.sha256)}
    assert run.run_by == engineer
    entry = AuditEntry.objects.get(action="training_run.create")
    assert len(entry.after["datasets"]) == 2


@pytest.mark.parametrize(
    ("method", "hyperparameters", "field", "fragment"),
    [
        (
            "full_finetune",
            {"learning_rate": "fast"},
            "hyperparameters.learning_rate",
            "not of type 'number'",
        ),
        (
            "full_finetune",
            {"learning_rate": 1e-5, "epochs": -1},
            "hyperparameters.epochs",
            "less than or equal to the minimum of 0",
        ),
        (
            "full_finetune",
            {"learning_rate": 1e-5, "batch_size": 2.5},
            "hyperparameters.batch_size",
            "not of type 'integer'",
        ),
        (
            "full_finetune",
            {"learning_rate": 1e-5, "seed": True},
            "hyperparameters.seed",
            "not of type 'integer'",
        ),
        ("full_finetune", {}, "hyperparameters", "'learning_rate' is a required property"),
        ("full_finetune", [1, 2], "hyperparameters", "not of type 'object'"),
        (
            "lora",
            {"rank": 8, "alpha": 16, "target_modules": "q_proj"},
            "hyperparameters.target_modules",
            "not of type 'array'",
        ),
    ],
)
def test_wrong_hyperparameters_are_refused(
    base, derive, engineer, method, hyperparameters, field, fragment
):
    child = derive(base, relation="adapter" if method == "lora" else "finetune")
    with pytest.raises(InvalidInput) as error:
        services.training_run_record(
            actor=engineer, version=child, method=method, hyperparameters=hyperparameters
        )
    assert any(fragment in message for message in error.value.fields[field])
    assert not TrainingRun.objects.exists()


def test_method_must_fit_the_relation(base, derive, engineer):
    quantized = derive(base, relation="quantized")
    with pytest.raises(InvalidInput, match="A 'quantized' child cannot be made by method 'lora'"):
        services.training_run_record(
            actor=engineer,
            version=quantized,
            method="lora",
            hyperparameters={"rank": 4, "alpha": 8, "target_modules": ["q"]},
        )


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"code_revision": "main"}, "code_revision"),
        ({"gpu_hours": -1.0}, "gpu_hours"),
        ({"framework_versions": {"torch": 2.4}}, "framework_versions.torch"),
        ({"datasets": [DatasetUse("acme/nothing@v1", "train")]}, "datasets[0].dataset_version"),
        ({"datasets": [DatasetUse("acme/tickets@v1", "holdout")]}, "datasets[0].role"),
        ({"run_by": "mallory"}, "run_by"),
    ],
)
def test_bad_run_details_are_refused(
    base, derive, engineer, outsider, make_dataset_version, extra, field
):
    make_dataset_version("acme/tickets")
    child = derive(base)
    with pytest.raises(InvalidInput) as error:
        services.training_run_record(
            actor=engineer,
            version=child,
            method="full_finetune",
            hyperparameters={"learning_rate": 1e-5},
            **extra,
        )
    assert field in error.value.fields
    assert not TrainingRun.objects.exists() and not TrainingDataset.objects.exists()


def test_a_run_finishing_before_it_starts_is_refused(base, derive, engineer):
    from datetime import UTC, datetime

    with pytest.raises(InvalidInput, match="before started_at"):
        services.training_run_record(
            actor=engineer,
            version=derive(base),
            method="full_finetune",
            hyperparameters={"learning_rate": 1e-5},
            started_at=datetime(2026, 5, 2, tzinfo=UTC),
            finished_at=datetime(2026, 5, 1, tzinfo=UTC),
        )


def test_a_version_has_one_training_run(base, derive, engineer):
    child = derive(base)
    services.training_run_record(
        actor=engineer,
        version=child,
        method="full_finetune",
        hyperparameters={"learning_rate": 1e-5},
    )
    with pytest.raises(Conflict, match="already has its training run"):
        services.training_run_record(
            actor=engineer,
            version=child,
            method="full_finetune",
            hyperparameters={"learning_rate": 1e-5},
        )


@pytest.mark.django_db(transaction=True)
def test_holds_are_published_as_signed_events(compliance_user, make_version):
    from registry.models import EventDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(
        name="sink", url="http://127.0.0.1:9/hook", secret="s", events=["version.held"]
    )
    version = make_version()
    hold = services.hold_place(
        actor=compliance_user, version=version, reason="upstream licence withdrawn"
    )
    delivery = EventDelivery.objects.get()
    assert delivery.event == "version.held"
    assert delivery.payload["data"]["hold"] == hold.pk
    assert delivery.payload["data"]["reason"] == "upstream licence withdrawn"
