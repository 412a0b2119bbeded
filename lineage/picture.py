"""Server-side layout of a lineage graph for an inline SVG picture (no JavaScript, no CDN).

Sugiyama-lite: layer every node by its longest path from a root (parents always above their
children, datasets just above the first version that used them), then reorder each layer a
few times by the barycentre of its neighbours' positions to reduce crossings, then place
nodes on a grid. Good enough for the tens of nodes a family tree has around one version.

Read by a person: labels are wrapped, never cut; edge labels are moved along their edge until
they overlap no other label or node; a legend says what colours mean; a parent with many
children shows a few and one "n more" node that opens its own picture.
"""

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db.models import OuterRef, Subquery
from django.urls import reverse

from lineage.selectors import LineageGraph, lineage_graph
from registry.models import ComplianceState, ComplianceStatus, GateDecision

# The admin picture: the whole ancestry, two generations of descendants, at most 60 versions.
PICTURE_DESCENDANTS_DEPTH = 2
PICTURE_MAX_NODES = 60
NODE_WIDTH = 210
NODE_HEIGHT = 50  # a node with a one-line title; each further line adds LINE_HEIGHT
LINE_HEIGHT = 15
GAP_X = 36
GAP_Y = 70
MARGIN = 24
SWEEPS = 4
LABEL_CHARS = 30  # per line of a node's title, which wraps and is never cut
EDGE_LABEL_WIDTH = 84
EDGE_LABEL_HEIGHT = 16
# Where along an edge its label may sit (0 = parent, 1 = child), tried in this order.
LABEL_POSITIONS = (0.5, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85)
# A parent with more children than this shows this many less one, and an "n more" node.
MAX_CHILDREN = 6
# An upstream card naming more training datasets than this shows them as one node.
MAX_DECLARED_DATASETS = 3
LEGEND_ROW = 22
LEGEND_MIN_WIDTH = 560

STATE_STROKES = {
    "held": "#c0392b",
    "failing": "#d35400",
    "out_of_compliance": "#8e44ad",
    "unresolved": "#7f8c8d",
}

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
    # "held", "failing", "out_of_compliance", "unresolved" (an upstream reference not yet
    # registered), "more" (the "n more" node of a collapsed family) or "".
    state: str = ""
    x: float = 0
    y: float = 0
    order: float = 0

    @property
    def lines(self) -> list[str]:
        return wrap(self.title)

    @property
    def height(self) -> float:
        return NODE_HEIGHT + (len(self.lines) - 1) * LINE_HEIGHT

    @property
    def cx(self) -> float:
        return self.x + NODE_WIDTH / 2

    @property
    def title_lines(self) -> list[tuple[float, str]]:
        return [(self.y + 21 + index * LINE_HEIGHT, line) for index, line in enumerate(self.lines)]

    @property
    def subtitle_y(self) -> float:
        return self.y + self.height - 11


@dataclass
class PictureEdge:
    source: str
    target: str
    label: str
    dashed: bool = False
    path: str = ""
    label_x: float = 0
    label_y: float = 0

    @property
    def label_left(self) -> float:
        return self.label_x - EDGE_LABEL_WIDTH / 2

    @property
    def label_top(self) -> float:
        return self.label_y - EDGE_LABEL_HEIGHT / 2 - 1


@dataclass
class Picture:
    nodes: list[PictureNode]
    edges: list[PictureEdge]
    width: float
    height: float
    truncated: bool = False
    layers: dict[int, list[str]] = field(default_factory=dict)
    legend: list[dict[str, str | float]] = field(default_factory=list)


def wrap(text: str, width: int = LABEL_CHARS) -> list[str]:
    """`text` in lines of at most `width` characters, broken after '/', '-', '@', '_', '.' or
    a space where possible; never cut."""
    lines: list[str] = []
    line = ""
    for piece in re.findall(r"[^/\-@_. ]*[/\-@_. ]?", text):
        if not piece:
            continue
        if len(line) + len(piece) > width and line:
            lines.append(line)
            line = ""
        while len(piece) > width:
            lines.append(piece[:width])
            piece = piece[width:]
        line += piece
    if line or not lines:
        lines.append(line)
    return [part.strip() for part in lines]


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


def failing_versions(version_ids: Iterable[int]) -> set[int]:
    """Versions whose last gate decision refused them and that are still where they were
    refused from. One query."""
    last = GateDecision.objects.filter(version_id=OuterRef("version_id")).order_by(
        "-decided_at", "-id"
    )
    refused = GateDecision.objects.filter(
        version_id__in=list(version_ids),
        pk=Subquery(last.values("pk")[:1]),
        passed=False,
    ).values_list("version_id", "from_stage", "version__stage")
    return {version_id for version_id, before, now in refused if before == now}


def version_states(version_ids: Iterable[int]) -> dict[int, str]:
    """How each version is coloured: out of compliance by its stored compliance status (a
    staged version that no longer passes its stage's gate), else failing when its last
    promotion was refused. Two queries."""
    ids = list(version_ids)
    states = {pk: "failing" for pk in failing_versions(ids)}
    out = ComplianceStatus.objects.filter(
        version_id__in=ids, state=ComplianceState.OUT_OF_COMPLIANCE
    ).values_list("version_id", flat=True)
    return states | {pk: "out_of_compliance" for pk in out}


def _collapse(
    graph: LineageGraph, version_url: Callable[[int], str]
) -> tuple[set[int], dict[int, tuple[int, str]]]:
    """Versions to leave out because their parent has more than MAX_CHILDREN children in the
    picture (never the focus or its ancestors), with the descendants only they lead to; and per
    such parent how many children were left out and where to see them all."""
    parents_of: dict[int, set[int]] = defaultdict(set)
    children: dict[int, list[int]] = defaultdict(list)
    for edge in graph.edges:
        parents_of[edge.child_id].add(edge.parent_id)
        children[edge.parent_id].append(edge.child_id)
    keep = {graph.focus.pk}
    frontier = [graph.focus.pk]
    while frontier:
        for parent in parents_of[frontier.pop()] - keep:
            keep.add(parent)
            frontier.append(parent)
    hidden: set[int] = set()
    more: dict[int, tuple[int, str]] = {}
    for parent, kids in children.items():
        if len(kids) <= MAX_CHILDREN:
            continue
        ordered = sorted(kids, key=lambda kid: (kid not in keep, kid))
        dropped = [kid for kid in ordered[MAX_CHILDREN - 1 :] if kid not in keep]
        hidden.update(dropped)
        if dropped:
            more[parent] = (len(dropped), version_url(parent))
    grown = True
    while grown:
        orphans = {
            version_id
            for version_id, above in parents_of.items()
            if version_id not in hidden and version_id not in keep and above <= hidden
        }
        hidden |= orphans
        grown = bool(orphans)
    return hidden, more


def _bezier(x1: float, y1: float, x2: float, y2: float, t: float) -> tuple[float, float]:
    bend = (y2 - y1) / 2
    points = [(x1, y1), (x1, y1 + bend), (x2, y2 - bend), (x2, y2)]
    u = 1 - t
    weights = [u**3, 3 * u * u * t, 3 * u * t * t, t**3]
    return (
        sum(w * px for w, (px, _) in zip(weights, points, strict=True)),
        sum(w * py for w, (_, py) in zip(weights, points, strict=True)),
    )


def _overlaps(box: tuple[float, float, float, float], others) -> bool:
    left, top, right, bottom = box
    return any(
        left < o_right and o_left < right and top < o_bottom and o_top < bottom
        for o_left, o_top, o_right, o_bottom in others
    )


def build_picture(
    graph: LineageGraph,
    *,
    version_url: Callable[[int], str],
    dataset_url: Callable[[int], str] | None = None,
    states: dict[int, str] | None = None,
    unresolved: Iterable[tuple[str, int]] = (),
) -> Picture:
    """Lay out `graph`; `version_url(version_id)` gives each visible node's link.

    `states` colours versions ("failing", "out_of_compliance"; holds come from the graph);
    `unresolved` adds, above each child version, a node for an upstream reference not
    registered yet, as (reference, child version id).
    """
    states = states or {}
    nodes: dict[str, PictureNode] = {}
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    edges: list[PictureEdge] = []
    hidden, more = _collapse(graph, version_url)

    for version_id, version in graph.versions.items():
        if version_id in hidden:
            continue
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
        state = "held" if holds else (states.get(version_id, "") if visible else "")
        if not visible:
            subtitle = "not visible to you"
        elif version.unresolved:
            subtitle = "unresolved reference"
            state = state or "unresolved"
        else:
            subtitle = version.stage
        nodes[key] = PictureNode(
            key=key,
            title=str(version) if visible else "hidden version",
            subtitle=subtitle
            + {
                "held": " · HELD",
                "failing": " · gate refused",
                "out_of_compliance": " · out of compliance",
            }.get(state, ""),
            layer=0,
            fill=STAGE_COLOURS.get(version.stage, "#ffffff") if visible else "#f6f6f6",
            stroke=STATE_STROKES.get(state, "#1f4e79" if focus else "#7a8796"),
            stroke_width=3 if focus else (2.2 if state else 1.2),
            href=version_url(version_id) if visible else "",
            held=bool(holds),
            hold_note=hold_note,
            state=state,
        )
    for edge in graph.edges:
        if edge.parent_id in hidden or edge.child_id in hidden:
            continue
        source, target = f"v{edge.parent_id}", f"v{edge.child_id}"
        parents[target].append(source)
        children[source].append(target)
        # An inferred relation nobody confirmed yet is marked, as the Hub marks its guesses.
        unconfirmed = edge.relation_inferred and edge.relation_confirmed_by_id is None
        edges.append(PictureEdge(source, target, edge.relation + ("?" if unconfirmed else "")))
    for parent_id, (count, url) in more.items():
        key = f"m{parent_id}"
        nodes[key] = PictureNode(
            key=key,
            title=f"{count} more",
            subtitle="open its family",
            layer=0,
            fill="#ffffff",
            stroke="#7a8796",
            href=url,
            state="more",
        )
        parents[key].append(f"v{parent_id}")
        children[f"v{parent_id}"].append(key)
        edges.append(PictureEdge(f"v{parent_id}", key, "", dashed=True))
    for index, (reference, child_id) in enumerate(unresolved):
        if f"v{child_id}" not in nodes:
            continue
        key = f"u{index}"
        nodes[key] = PictureNode(
            key=key,
            title=reference,
            subtitle="unresolved reference",
            layer=0,
            fill="#ffffff",
            stroke=STATE_STROKES["unresolved"],
            state="unresolved",
        )
        parents[f"v{child_id}"].append(key)
        children[key].append(f"v{child_id}")
        edges.append(PictureEdge(key, f"v{child_id}", "declared", dashed=True))

    version_keys = list(nodes)
    layer_of = _layers(version_keys, parents)
    dataset_children: dict[str, list[str]] = defaultdict(list)
    declared = Counter(link.user_version_id for link in graph.datasets if link.declared)
    for link in graph.datasets:
        target = f"v{link.user_version_id}"
        if target not in nodes:
            continue
        key = f"d{link.dataset_version_id}"
        if link.declared and declared[link.user_version_id] > MAX_DECLARED_DATASETS:
            # A card naming many datasets (MiniLM names 21) is one node, not a row of them.
            key = f"c{link.user_version_id}"
            if key in nodes:
                continue
            nodes[key] = PictureNode(
                key=key,
                title=f"{declared[link.user_version_id]} datasets",
                subtitle="named by the card",
                layer=0,
                fill="#ffffff",
                stroke="#8e7cc3",
                dataset=True,
            )
        elif key not in nodes:
            visible = link.dataset_version_id in graph.visible_dataset_ids
            nodes[key] = PictureNode(
                key=key,
                title=str(link.dataset_version) if visible else "hidden dataset",
                subtitle="dataset named by the card" if link.declared else "dataset",
                layer=0,
                fill="#ffffff",
                stroke="#8e7cc3",
                dataset=True,
                href=dataset_url(link.dataset_version_id) if dataset_url and visible else "",
            )
        dataset_children[key].append(target)
        children[key].append(target)
        parents[target].append(key)
        edges.append(
            PictureEdge(key, target, "declared" if link.declared else link.role, dashed=True)
        )
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
    width = max(MARGIN * 2 + widest * NODE_WIDTH + (widest - 1) * GAP_X, LEGEND_MIN_WIDTH)
    top: float = MARGIN
    for row in layers.values():
        row_width = len(row) * NODE_WIDTH + (len(row) - 1) * GAP_X
        left = (width - row_width) / 2
        for index, key in enumerate(row):
            node = nodes[key]
            node.x = left + index * (NODE_WIDTH + GAP_X)
            node.y = top
        top += max(nodes[key].height for key in row) + GAP_Y
    boxes = [(n.x, n.y, n.x + NODE_WIDTH, n.y + n.height) for n in nodes.values()]
    for drawn in edges:
        start, end = nodes[drawn.source], nodes[drawn.target]
        x1, y1 = start.cx, start.y + start.height
        x2, y2 = end.cx, end.y
        bend = (y2 - y1) / 2
        drawn.path = (
            f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} "
            f"{x2:.1f},{y2:.1f}"
        )
        if not drawn.label:
            continue
        # The first place along the edge where the label hides no other label or node.
        for t in LABEL_POSITIONS:
            x, y = _bezier(x1, y1, x2, y2, t)
            box = (
                x - EDGE_LABEL_WIDTH / 2,
                y - EDGE_LABEL_HEIGHT / 2,
                x + EDGE_LABEL_WIDTH / 2,
                y + EDGE_LABEL_HEIGHT / 2,
            )
            if not _overlaps(box, boxes):
                break
        drawn.label_x, drawn.label_y = x, y
        boxes.append(box)
    height = top - GAP_Y + MARGIN if layers else MARGIN * 2
    legend, legend_height = _legend(width, height)
    return Picture(
        nodes=list(nodes.values()),
        edges=edges,
        width=width,
        height=height + legend_height + MARGIN / 2,
        truncated=graph.truncated,
        layers=layers,
        legend=legend,
    )


LEGEND_ENTRIES = [
    *((stage, fill, "#7a8796") for stage, fill in STAGE_COLOURS.items()),
    ("held", "#ffffff", STATE_STROKES["held"]),
    ("gate refused", "#ffffff", STATE_STROKES["failing"]),
    ("out of compliance", "#ffffff", STATE_STROKES["out_of_compliance"]),
    ("unresolved reference", "#ffffff", STATE_STROKES["unresolved"]),
    ("dataset", "#ffffff", "#8e7cc3"),
]


def _legend(width: float, top: float) -> tuple[list[dict[str, str | float]], float]:
    """Swatches of every colour a picture can use (the same on every picture, so that it is
    learnt once), in rows that fit `width` from `top`; and the height they take."""
    entries: list[dict[str, str | float]] = []
    x, y = float(MARGIN), top
    for label, fill, stroke in LEGEND_ENTRIES:
        span = 26 + 6.5 * len(label) + 14
        if x + span > width - MARGIN and x > MARGIN:
            x, y = float(MARGIN), y + LEGEND_ROW
        entries.append({"label": label, "fill": fill, "stroke": stroke, "x": x, "y": y})
        x += span
    return entries, y + LEGEND_ROW - top


def version_picture(user, version) -> Picture:
    """The admin picture of `version`, nodes linking to their admin pages."""
    graph = lineage_graph(
        user,
        version,
        descendants_depth=PICTURE_DESCENDANTS_DEPTH,
        max_nodes=PICTURE_MAX_NODES,
    )
    return build_picture(
        graph,
        version_url=lambda pk: reverse("admin:registry_modelversion_change", args=[pk]),
        dataset_url=lambda pk: reverse("admin:registry_datasetversion_change", args=[pk]),
        states=version_states(graph.visible_ids),
    )
