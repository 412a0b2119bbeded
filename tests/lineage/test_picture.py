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


def _boxes_overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_are_wrapped_whole_and_edge_labels_never_overlap(
    base, derive, engineer, make_dataset_version
):
    """Two parents of a merge sit side by side, so their edge labels' midpoints coincide; and
    two datasets feed one version."""
    left, right = derive(base), derive(base)
    merged = derive(left, right, relation="merge")
    data = [make_dataset_version(f"acme/tickets-{n}") for n in range(2)]
    services.training_run_record(
        actor=engineer,
        version=merged,
        method="merge",
        hyperparameters={"merge_method": "ties"},
        datasets=[services.DatasetUse(data[0], "train"), services.DatasetUse(data[1], "test")],
    )
    picture = layout(engineer, merged)
    node = next(n for n in picture.nodes if n.key == f"v{base.pk}")
    assert "".join(node.lines) == "sentence-transformers/all-MiniLM-L6-v2@main"
    assert len(node.lines) == 2 and all(len(line) <= 30 for line in node.lines)
    assert node.height > next(n for n in picture.nodes if n.key == f"v{merged.pk}").height
    width, height = 84, 16
    labels = [
        (
            e.label_x - width / 2,
            e.label_y - height / 2,
            e.label_x + width / 2,
            e.label_y + height / 2,
        )
        for e in picture.edges
        if e.label
    ]
    nodes = [(n.x, n.y, n.x + 210, n.y + n.height) for n in picture.nodes]
    assert len(labels) == 6
    for index, label in enumerate(labels):
        assert not any(_boxes_overlap(label, other) for other in labels[index + 1 :])
        assert not any(_boxes_overlap(label, box) for box in nodes)


def test_large_families_collapse_to_n_more_and_states_colour_nodes(base, derive, engineer):
    children = [derive(base) for _ in range(9)]
    focus = children[-1]
    picture = build_picture(
        selectors.lineage_graph(engineer, base),
        version_url=lambda pk: f"/v/{pk}",
        states={children[0].pk: "failing"},
        unresolved=[("meta-llama/Llama-3-8B", base.pk)],
    )
    keys = {n.key for n in picture.nodes}
    more = next(n for n in picture.nodes if n.state == "more")
    assert more.title == "4 more" and more.href == f"/v/{base.pk}"
    assert len([k for k in keys if k.startswith("v")]) == 1 + 5
    failing = next(n for n in picture.nodes if n.key == f"v{children[0].pk}")
    assert failing.stroke == "#d35400" and "gate refused" in failing.subtitle
    unresolved = next(n for n in picture.nodes if n.state == "unresolved")
    assert unresolved.title == "meta-llama/Llama-3-8B" and unresolved.layer < failing.layer
    assert [entry["label"] for entry in picture.legend][-5:] == [
        "held",
        "gate refused",
        "out of compliance",
        "unresolved reference",
        "dataset",
    ]
    # The focus is never collapsed away, even past the first children.
    around_focus = layout(engineer, focus)
    assert f"v{focus.pk}" in {n.key for n in around_focus.nodes}


def test_version_picture_marks_a_refused_version(client, base, derive, engineer, compliance_user):
    from registry import services as registry_services

    child = derive(base)
    registry_services.version_promote(actor=engineer, version=child, stage="production")
    compliance_user.is_staff = True
    compliance_user.is_superuser = True
    compliance_user.save()
    client.force_login(compliance_user)
    svg = client.get(f"/admin/lineage/lineageedge/graph/{base.pk}.svg").content.decode()
    assert 'class="node state-failing"' in svg and "gate refused" in svg
    assert 'class="legend"' in svg and "<tspan" in svg
