"""Server-side layout of a lineage graph for an inline SVG picture (no JavaScript, no CDN).

Sugiyama-lite: layer every node by its longest path from a root (parents always above their
children, datasets just above the first version that used them), then reorder each layer a
few times by the barycentre of its neighbours' positions to reduce crossings, then place
nodes on a grid. Good enough for the tens of nodes a family tree has around one version.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.urls import reverse

from lineage.selectors import LineageGraph, lineage_graph

# The admin picture: the whole ancestry, two generations of descendants, at most 60 versions.
PICTURE_DESCENDANTS_DEPTH = 2
PICTURE_MAX_NODES = 60
NODE_WIDTH = 210
NODE_HEIGHT = 50
GAP_X = 36
GAP_Y = 70
MARGIN = 24
SWEEPS = 4
LABEL_CHARS = 32

STAGE_COLOURS = {
    "development": "#e8eef7",
    "staging": "#fff4d6",
    "production": "#dcf2e0",
    "archived": "#eeeeee",
}


@dataclass
class PictureNode:
    key: str
    title: str
    subtitle: str
    layer: int
    fill: str
    stroke: str
    stroke_width: float = 1.2
    href: str = ""
    held: bool = False
    dataset: bool = False
    hold_note: str = ""
    x: float = 0
    y: float = 0
    order: float = 0

    @property
    def cx(self) -> float:
        return self.x + NODE_WIDTH / 2

    @property
    def title_y(self) -> float:
        return self.y + 21

    @property
    def subtitle_y(self) -> float:
        return self.y + 39


@dataclass
class PictureEdge:
    source: str
    target: str
    label: str
    dashed: bool = False
    path: str = ""
    label_x: float = 0
    label_y: float = 0


@dataclass
class Picture:
    nodes: list[PictureNode]
    edges: list[PictureEdge]
    width: float
    height: float
    truncated: bool = False
    layers: dict[int, list[str]] = field(default_factory=dict)


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else f"{text[: LABEL_CHARS - 1]}…"


def _layers(keys: list[str], parents: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layering over a DAG: a node sits one layer below its lowest parent."""
    layer: dict[str, int] = {}
    children: dict[str, list[str]] = defaultdict(list)
    waiting = {key: len(parents[key]) for key in keys}
    for key in keys:
        for parent in parents[key]:
            children[parent].append(key)
    ready = [key for key in keys if waiting[key] == 0]
    for key in ready:
        layer[key] = 0
    while ready:
        key = ready.pop()
        for child in children[key]:
            layer[child] = max(layer.get(child, 0), layer[key] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return layer


def _order(layers: dict[int, list[str]], parents, children) -> None:
    """Barycentre sweeps, down then up, reordering each layer in place."""
    position: dict[str, float] = {}

    def remember(row: list[str]) -> None:
        for index, key in enumerate(row):
            position[key] = index

    for row in layers.values():
        remember(row)
    depth = sorted(layers)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        for number in depth[1:] if downward else reversed(depth[:-1]):
            row = layers[number]
            neighbours = parents if downward else children

            def barycentre(key: str, neighbours=neighbours) -> float:
                around = [position[other] for other in neighbours[key] if other in position]
                return sum(around) / len(around) if around else position[key]

            row.sort(key=lambda key: (barycentre(key), position[key]))
            remember(row)


def build_picture(graph: LineageGraph, *, version_url) -> Picture:
    """Lay out `graph`; `version_url(version_id)` gives each visible node's link."""
    nodes: dict[str, PictureNode] = {}
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    edges: list[PictureEdge] = []

    for version_id, version in graph.versions.items():
        key = f"v{version_id}"
        holds = graph.holds.get(version_id, [])
        visible = version_id in graph.visible_ids
        focus = version_id == graph.focus.pk
        hold_note = "; ".join(
            f"held{'' if hold.version_id == version_id else f' through {hold.version}'}: "
            f"{hold.reason}"
            if hold.version_id in graph.visible_ids
            else "held"
            if hold.version_id == version_id
            else "held through a version you cannot see"
            for hold in holds
        )
        nodes[key] = PictureNode(
            key=key,
            title=_short(str(version)) if visible else "hidden version",
            subtitle=(version.stage if visible else "not visible to you")
            + (" · HELD" if holds else ""),
            layer=0,
            fill=STAGE_COLOURS.get(version.stage, "#ffffff") if visible else "#f6f6f6",
            stroke="#c0392b" if holds else ("#1f4e79" if focus else "#7a8796"),
            stroke_width=3 if focus else (2 if holds else 1.2),
            href=version_url(version_id) if visible else "",
            held=bool(holds),
            hold_note=hold_note,
        )
    for edge in graph.edges:
        source, target = f"v{edge.parent_id}", f"v{edge.child_id}"
        parents[target].append(source)
        children[source].append(target)
        edges.append(PictureEdge(source, target, edge.relation))

    version_keys = list(nodes)
    layer_of = _layers(version_keys, parents)
    dataset_children: dict[str, list[str]] = defaultdict(list)
    for link in graph.datasets:
        key = f"d{link.dataset_version_id}"
        target = f"v{link.run.version_id}"
        if key not in nodes:
            visible = link.dataset_version_id in graph.visible_dataset_ids
            nodes[key] = PictureNode(
                key=key,
                title=_short(str(link.dataset_version)) if visible else "hidden dataset",
                subtitle="dataset",
                layer=0,
                fill="#ffffff",
                stroke="#8e7cc3",
                dataset=True,
            )
        dataset_children[key].append(target)
        children[key].append(target)
        parents[target].append(key)
        edges.append(PictureEdge(key, target, link.role, dashed=True))
    # Datasets sit one layer above the highest version that used them; shift all down if a
    # dataset would otherwise float above the top layer.
    for key, users in dataset_children.items():
        layer_of[key] = min(layer_of[user] for user in users) - 1
    shift = -min(layer_of.values(), default=0)
    layers: dict[int, list[str]] = defaultdict(list)
    for key in nodes:
        nodes[key].layer = layer_of[key] + shift
        layers[nodes[key].layer].append(key)
    layers = dict(sorted(layers.items()))
    _order(layers, parents, children)

    widest = max((len(row) for row in layers.values()), default=1)
    width = MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * GAP_X
    for number, row in layers.items():
        row_width = len(row) * NODE_WIDTH + (len(row) - 1) * GAP_X
        left = (width - row_width) / 2
        for index, key in enumerate(row):
            node = nodes[key]
            node.x = left + index * (NODE_WIDTH + GAP_X)
            node.y = MARGIN + number * (NODE_HEIGHT + GAP_Y)
    for drawn in edges:
        start, end = nodes[drawn.source], nodes[drawn.target]
        x1, y1 = start.cx, start.y + NODE_HEIGHT
        x2, y2 = end.cx, end.y
        bend = (y2 - y1) / 2
        drawn.path = (
            f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} "
            f"{x2:.1f},{y2:.1f}"
        )
        drawn.label_x, drawn.label_y = (x1 + x2) / 2, (y1 + y2) / 2
    height = MARGIN * 2 + len(layers) * NODE_HEIGHT + max(len(layers) - 1, 0) * GAP_Y
    return Picture(
        nodes=list(nodes.values()),
        edges=edges,
        width=width,
        height=height,
        truncated=graph.truncated,
        layers=layers,
    )


def version_picture(user, version) -> Picture:
    """The admin picture of `version`, nodes linking to their admin pages."""
    graph = lineage_graph(
        user,
        version,
        descendants_depth=PICTURE_DESCENDANTS_DEPTH,
        max_nodes=PICTURE_MAX_NODES,
    )
    return build_picture(
        graph, version_url=lambda pk: reverse("admin:registry_modelversion_change", args=[pk])
    )
