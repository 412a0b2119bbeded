"""The server-side layout of the lineage picture: layers, ordering, hidden versions."""

import pytest

from lineage import selectors, services
from lineage.picture import build_picture

pytestmark = pytest.mark.django_db


def layout(user, version):
    graph = selectors.lineage_graph(user, version)
    return build_picture(graph, version_url=lambda pk: f"/v/{pk}")


def test_layers_follow_the_longest_path_and_datasets_sit_above_their_user(
    base, derive, engineer, make_dataset_version
):
    tuned = derive(base)
    deeper = derive(tuned)
    merged = derive(base, deeper, relation="merge")  # one parent is two layers further up
    data = make_dataset_version("acme/tickets")
    services.training_run_record(
        actor=engineer,
        version=merged,
        method="merge",
        hyperparameters={"merge_method": "ties"},
        datasets=[services.DatasetUse(data, "validation")],
    )
    picture = layout(engineer, merged)
    layer = {node.key: node.layer for node in picture.nodes}
    assert [layer[f"v{v.pk}"] for v in (base, tuned, deeper, merged)] == [0, 1, 2, 3]
    assert layer[f"d{data.pk}"] == 2
    y = {node.key: node.y for node in picture.nodes}
    assert y[f"v{base.pk}"] < y[f"v{tuned.pk}"] < y[f"v{deeper.pk}"] < y[f"v{merged.pk}"]
    labels = {(edge.source, edge.target): edge.label for edge in picture.edges}
    assert labels[(f"v{deeper.pk}", f"v{merged.pk}")] == "merge"
    assert labels[(f"d{data.pk}", f"v{merged.pk}")] == "validation"


def test_barycentre_ordering_uncrosses_two_families(make_version, derive, engineer):
    left_root, right_root = make_version(), make_version()
    # Created crosswise, so registration order alone would cross the edges.
    right_child = derive(right_root)
    left_child = derive(left_root)
    merged = derive(left_child, right_child, relation="merge")
    picture = layout(engineer, merged)
    x = {node.key: node.x for node in picture.nodes}
    roots_order = x[f"v{left_root.pk}"] < x[f"v{right_root.pk}"]
    children_order = x[f"v{left_child.pk}"] < x[f"v{right_child.pk}"]
    assert roots_order == children_order


def test_hidden_versions_are_anonymous_and_unlinked(
    base, derive, make_version_of, engineer, compliance_user
):
    secret = make_version_of("globex/private")
    services.edge_create(actor=compliance_user, child=secret, parent=base, relation="finetune")
    picture = layout(engineer, base)
    node = next(n for n in picture.nodes if n.key == f"v{secret.pk}")
    assert node.title == "hidden version" and node.href == ""
    assert "globex" not in " ".join(n.title for n in picture.nodes)
