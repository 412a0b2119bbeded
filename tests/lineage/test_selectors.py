"""Lineage reads: each walk is one recursive query whose count does not grow with the DAG."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lineage import selectors, services
from lineage.services import DatasetUse, ParentSpec
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(base, derive, make_version_of, engineer):
    """base ← tuned ← adapter ← merged → (also) other_tuned ← base;  merged ← deep.

    plus a globex-private version derived from `tuned` that acme cannot see.
    """
    tuned = derive(base)
    adapter = derive(tuned, relation="adapter")
    other_tuned = derive(base)
    merged = derive(adapter, other_tuned, relation="merge")
    deep = derive(merged, relation="quantized")
    hidden = make_version_of("globex/private-tune")
    services.edge_create(actor=hidden.registered_by, child=hidden, parent=base, relation="finetune")
    return {
        "base": base,
        "tuned": tuned,
        "adapter": adapter,
        "other": other_tuned,
        "merged": merged,
        "deep": deep,
        "hidden": hidden,
    }


def ids(queryset) -> set[int]:
    return {version.pk for version in queryset}


def test_ancestors_and_descendants_of_a_merge(family, engineer, compliance_user):
    f = family
    assert ids(selectors.ancestors_of(engineer, f["deep"])) == {
        f["merged"].pk,
        f["adapter"].pk,
        f["tuned"].pk,
        f["other"].pk,
        f["base"].pk,
    }
    assert ids(selectors.ancestors_of(engineer, f["deep"], max_depth=2)) == {
        f["merged"].pk,
        f["adapter"].pk,
        f["other"].pk,
    }
    # Acme does not see globex's private descendant; compliance does.
    assert f["hidden"].pk not in ids(selectors.descendants_of(engineer, f["base"]))
    assert ids(selectors.descendants_of(compliance_user, f["base"])) == {
        f[key].pk for key in ("tuned", "adapter", "other", "merged", "deep", "hidden")
    }
    assert ids(selectors.descendants_of(engineer, f["tuned"], max_depth=1)) == {f["adapter"].pk}
    # The raw id walks are unrestricted: governance code sees every relative.
    unrestricted = ModelVersion.objects.filter(pk__in=selectors.descendant_ids(f["base"].pk))
    assert f["hidden"].pk in ids(unrestricted)


def test_roots_of_a_version(family, engineer, base, derive, make_version):
    other_root = make_version()
    merged = derive(family["deep"], other_root, relation="merge")
    assert ids(selectors.roots_of(engineer, merged)) == {base.pk, other_root.pk}
    assert ids(selectors.roots_of(engineer, base)) == {base.pk}


def test_path_between_two_versions_in_either_order(family):
    f = family
    path = selectors.lineage_path(f["base"], f["deep"])
    assert [v.pk for v in path.versions] == [
        f["base"].pk,
        f["other"].pk,
        f["merged"].pk,
        f["deep"].pk,
    ]
    assert [e.relation for e in path.edges] == ["finetune", "merge", "quantized"]
    assert len(path.all_edges) == 6  # every edge on any base → deep path
    reverse = selectors.lineage_path(f["deep"], f["base"])
    assert reverse.ancestor == f["base"] and reverse.descendant == f["deep"]
    assert selectors.lineage_path(f["adapter"], f["other"]) is None
    assert selectors.lineage_path(f["deep"], f["deep"]).versions == [f["deep"]]


def test_trained_on_a_dataset_directly_or_through_ancestors(family, engineer, make_dataset_version):
    f = family
    tickets = make_dataset_version("acme/tickets")
    exam = make_dataset_version("acme/exam")
    services.training_run_record(
        actor=engineer,
        version=f["adapter"],
        method="lora",
        hyperparameters={"rank": 8, "alpha": 16, "target_modules": ["query"]},
        datasets=[DatasetUse(tickets, "train"), DatasetUse(exam, "test")],
    )
    trained = {v.pk: v.trained_directly for v in selectors.trained_on(engineer, tickets)}
    assert trained == {f["adapter"].pk: True, f["merged"].pk: False, f["deep"].pk: False}
    # Test data measured the model; it did not train it, unless asked for.
    assert ids(selectors.trained_on(engineer, exam)) == set()
    assert ids(selectors.trained_on(engineer, exam, roles=["test"])) == {
        f["adapter"].pk,
        f["merged"].pk,
        f["deep"].pk,
    }


def test_graph_neighbourhood_is_depth_limited_and_truncated_nearest_first(family, engineer):
    f = family
    graph = selectors.lineage_graph(engineer, f["merged"], ancestors_depth=1, descendants_depth=1)
    assert set(graph.versions) == {f["merged"].pk, f["adapter"].pk, f["other"].pk, f["deep"].pk}
    assert graph.generation[f["adapter"].pk] == -1 and graph.generation[f["deep"].pk] == 1
    assert not graph.truncated
    whole = selectors.lineage_graph(engineer, f["base"])
    assert f["hidden"].pk in whole.versions and f["hidden"].pk not in whole.visible_ids
    cut = selectors.lineage_graph(engineer, f["merged"], max_nodes=3)
    assert cut.truncated and len(cut.versions) == 3 and f["merged"].pk in cut.versions


def build_chain(derive, start, length):
    versions = [start]
    for _ in range(length):
        versions.append(derive(versions[-1]))
    return versions


@pytest.mark.parametrize(
    "read",
    [
        lambda user, v, root, data: list(selectors.ancestors_of(user, v)),
        lambda user, v, root, data: list(selectors.descendants_of(user, root)),
        lambda user, v, root, data: list(selectors.roots_of(user, v)),
        lambda user, v, root, data: list(selectors.trained_on(user, data)),
        lambda user, v, root, data: selectors.lineage_path(root, v),
        lambda user, v, root, data: list(selectors.active_holds_on(v.pk)),
    ],
    ids=["ancestors", "descendants", "roots", "trained_on", "path", "holds"],
)
def test_each_walk_is_one_query_whatever_the_dag_size(
    read, base, derive, engineer, make_dataset_version, django_assert_num_queries
):
    data = make_dataset_version()
    small = build_chain(derive, base, 2)
    services.training_run_record(
        actor=engineer,
        version=small[1],
        method="full_finetune",
        hyperparameters={"learning_rate": 1e-5},
        datasets=[DatasetUse(data, "train")],
    )
    with django_assert_num_queries(1):
        read(engineer, small[-1], base, data)
    large = build_chain(derive, small[-1], 30)
    side = derive(large[10], large[20], relation="merge")
    with django_assert_num_queries(1):
        read(engineer, side, base, data)


def test_graph_query_count_does_not_grow(
    base, derive, engineer, make_dataset_version, compliance_user
):
    versions = build_chain(derive, base, 2)
    # The small family has a hold and training data too: each kind of node costs its query once.
    services.hold_place(actor=compliance_user, version=versions[0], reason="security")
    services.training_run_record(
        actor=engineer,
        version=versions[1],
        method="full_finetune",
        hyperparameters={"learning_rate": 1e-5},
        datasets=[DatasetUse(make_dataset_version(), "train")],
    )
    with CaptureQueriesContext(connection) as small:
        selectors.lineage_graph(engineer, versions[1])
    versions = build_chain(derive, versions[-1], 20)
    merged = derive(versions[5], versions[15], relation="merge")
    services.hold_place(actor=compliance_user, version=versions[3], reason="security")
    data = make_dataset_version()
    services.training_run_record(
        actor=engineer,
        version=merged,
        method="merge",
        hyperparameters={"merge_method": "slerp"},
        datasets=[DatasetUse(data, "validation")],
    )
    with CaptureQueriesContext(connection) as large:
        graph = selectors.lineage_graph(engineer, versions[10])
    assert len(large.captured_queries) == len(small.captured_queries)
    assert len(graph.versions) > 20 and graph.datasets and graph.holds
    recursive = [q for q in large.captured_queries if "WITH RECURSIVE" in q["sql"]]
    assert len(recursive) == 1


def test_parent_specs_accept_ids_and_refs(base, make_version, engineer):
    child = make_version()
    services.edges_create(
        actor=engineer, child=child, parents=[ParentSpec(str(base.pk), "adapter")]
    )
    assert [e.parent for e in selectors.parent_edges(child)] == [base]
