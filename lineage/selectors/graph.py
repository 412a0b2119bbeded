"""Neighbourhoods of the DAG to draw or serialise, and the derivation path between versions."""

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models.expressions import RawSQL

from lineage.models import (
    DataLink,
    HeldThrough,
    Hold,
    LineageEdge,
    TrainingDataset,
    UpstreamTrainingData,
)
from lineage.selectors.walks import (
    Direction,
    check_depth,
    fetch_ids,
    seed_of,
    seed_sql,
    sql,
    walk_cte,
)
from registry.models import ModelVersion
from registry.selectors import dataset_versions_visible_to, versions_visible_to
from registry.types import Reader

# A picture or JSON graph larger than this is cut (and says so); ask for a depth instead.
GRAPH_MAX_NODES = 400


@dataclass
class LineageGraph:
    """A neighbourhood of the DAG around `focus`, with what is needed to draw or serialise it.

    `visible_ids` are the versions the viewer may see, `visible_dataset_ids` the dataset
    versions; others are still nodes (the shape of a family tree is not secret) but are shown
    as placeholders without name, digest, licence, stage or hold reason.
    """

    focus: ModelVersion
    versions: dict[int, ModelVersion]
    edges: list[LineageEdge]
    datasets: list[DataLink]
    holds: dict[int, list[Hold]]
    visible_ids: set[int]
    visible_dataset_ids: set[int] = field(default_factory=set)
    truncated: bool = False
    generation: dict[int, int] = field(default_factory=dict)


def _neighbourhood_sql(
    version_id: int, *, walks: dict[Direction, int | None], limit: int
) -> RawSQL:
    """Ids of `version_id` and of its relatives along `walks` (direction → depth limit or None
    for no limit), nearest first (unlimited walks count as near), at most `limit` of them."""
    seed, seed_params = seed_of(version_id)
    ctes = []
    selects = [sql("SELECT id, -1 AS depth FROM ({seed}) s", seed=seed)]
    params = list(seed_params)
    for direction, depth in walks.items():
        check_depth(depth)
        ctes.append(walk_cte(direction, direction, seed, depth))
        selects.append(
            sql(
                "SELECT id, {depth} AS depth FROM {walk}",
                walk=direction,
                depth="depth" if depth is not None else "0",
            )
        )
        params += seed_params
    query = sql(
        "SELECT id FROM ({union}) n GROUP BY id ORDER BY MIN(depth), id LIMIT {limit}",
        union=" UNION ALL ".join(selects),
        limit=int(limit),
    )
    if ctes:
        query = sql("WITH RECURSIVE {ctes} {query}", ctes=", ".join(ctes), query=query)
    return RawSQL(query, params)  # noqa: S611 (built by `sql`: values are parameters)


def lineage_graph(
    user: Reader,
    version: ModelVersion,
    *,
    ancestors: bool = True,
    descendants: bool = True,
    ancestors_depth: int | None = None,
    descendants_depth: int | None = None,
    max_nodes: int = GRAPH_MAX_NODES,
) -> LineageGraph:
    """The versions around `version` (one recursive query), the edges between them, the
    datasets their runs used and their holds: a bounded number of queries in all.

    Depths limit each walk (None: no limit). Beyond `max_nodes` the nearest versions are kept
    and `truncated` is set.
    """
    walks: dict[Direction, int | None] = {}
    if ancestors:
        walks["up"] = ancestors_depth
    if descendants:
        walks["down"] = descendants_depth
    node_sql = _neighbourhood_sql(version.pk, walks=walks, limit=max_nodes + 1)
    ids = fetch_ids(node_sql)
    truncated = len(ids) > max_nodes
    ids = ids[:max_nodes]
    versions = {
        v.pk: v for v in ModelVersion.objects.filter(pk__in=ids).select_related("model__team")
    }
    edges = list(LineageEdge.objects.filter(child_id__in=ids, parent_id__in=ids).order_by("id"))
    datasets: list[DataLink] = [
        *TrainingDataset.objects.filter(run__version_id__in=ids)
        .select_related("run", "dataset_version__dataset")
        .order_by("run__version_id", "role", "id"),
        *UpstreamTrainingData.objects.filter(version_id__in=ids)
        .select_related("dataset_version__dataset")
        .order_by("version_id", "id"),
    ]
    holds: dict[int, list[Hold]] = defaultdict(list)
    for through in (
        HeldThrough.objects.filter(version_id__in=ids, hold__lifted_at__isnull=True)
        .select_related("hold__version__model", "hold__placed_by")
        .order_by("hold__placed_at", "hold_id")
    ):
        holds[through.version_id].append(through.hold)
    visible = _visible_among(user, versions)
    dataset_ids = {link.dataset_version_id for link in datasets}
    visible_datasets = set(
        dataset_versions_visible_to(user).filter(pk__in=dataset_ids).values_list("pk", flat=True)
    )
    return LineageGraph(
        focus=version,
        versions=versions,
        edges=edges,
        datasets=datasets,
        holds=dict(holds),
        visible_ids=visible,
        visible_dataset_ids=visible_datasets,
        truncated=truncated,
        generation=_generations(version.pk, edges),
    )


def _visible_among(user: Reader, ids: Iterable[int]) -> set[int]:
    return set(versions_visible_to(user).filter(pk__in=list(ids)).values_list("pk", flat=True))


def _generations(focus_id: int, edges: Sequence[LineageEdge]) -> dict[int, int]:
    """Signed distance from the focus in edges: negative for ancestors, positive below."""
    parents, children = defaultdict(list), defaultdict(list)
    for edge in edges:
        parents[edge.child_id].append(edge.parent_id)
        children[edge.parent_id].append(edge.child_id)
    generation = {focus_id: 0}
    for neighbours, sign in ((parents, -1), (children, 1)):
        queue = deque([focus_id])
        while queue:
            node = queue.popleft()
            for other in neighbours[node]:
                if other not in generation:
                    generation[other] = generation[node] + sign
                    queue.append(other)
    return generation


# --- Paths ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineagePath:
    """How `descendant` came from `ancestor`: the shortest chain, and every edge on any path."""

    ancestor: ModelVersion
    descendant: ModelVersion
    versions: list[ModelVersion]  # ancestor first
    edges: list[LineageEdge]  # along `versions`, parent → child order
    all_edges: list[LineageEdge]


def _between_edge_ids(first_id: int, second_id: int) -> RawSQL:
    """Ids of the edges lying on any derivation path between the two versions, whichever is
    the ancestor: walk up from one, then down from the other only through those ancestors."""
    seed = seed_sql()

    def restricted_down(name: str, within: str) -> str:
        return sql(
            "{name}(id) AS ({seed} UNION SELECT e.child_id FROM {edge} e JOIN {name} w "
            "ON e.parent_id = w.id WHERE e.child_id IN (SELECT id FROM {within}))",
            name=name,
            seed=seed,
            within=within,
        )

    query = sql(
        "WITH RECURSIVE {up_a}, {up_b}, {b_to_a}, {a_to_b}, "
        "on_path(id) AS (SELECT id FROM b_to_a WHERE EXISTS "
        "(SELECT 1 FROM b_to_a x WHERE x.id = %s) "
        "UNION SELECT id FROM a_to_b WHERE EXISTS (SELECT 1 FROM a_to_b y WHERE y.id = %s)) "
        "SELECT e.id FROM {edge} e WHERE e.child_id IN (SELECT id FROM on_path) "
        "AND e.parent_id IN (SELECT id FROM on_path)",
        up_a=walk_cte("up_a", "up", seed, None),
        up_b=walk_cte("up_b", "up", seed, None),
        b_to_a=restricted_down("b_to_a", "up_a"),
        a_to_b=restricted_down("a_to_b", "up_b"),
    )
    params = [first_id, second_id, second_id, first_id, first_id, second_id]
    return RawSQL(query, params)  # noqa: S611 (built by `sql`: values are parameters)


def lineage_path(first: ModelVersion, second: ModelVersion) -> LineagePath | None:
    """The derivation path between two versions in either order (None when neither descends
    from the other). One recursive query; the shortest chain is picked in memory."""
    if first.pk == second.pk:
        return LineagePath(first, first, [first], [], [])
    all_edges = list(
        LineageEdge.objects.filter(pk__in=_between_edge_ids(first.pk, second.pk))
        .select_related("child__model__team", "parent__model__team")
        .order_by("id")
    )
    if not all_edges:
        return None
    child_ids = {edge.child_id for edge in all_edges}
    ancestor, descendant = (first, second) if first.pk not in child_ids else (second, first)
    by_parent: dict[int, list[LineageEdge]] = defaultdict(list)
    for edge in all_edges:
        by_parent[edge.parent_id].append(edge)
    came_by: dict[int, LineageEdge] = {}
    queue = deque([ancestor.pk])
    while queue and descendant.pk not in came_by:
        node = queue.popleft()
        for edge in by_parent[node]:
            if edge.child_id not in came_by:
                came_by[edge.child_id] = edge
                queue.append(edge.child_id)
    chain: list[LineageEdge] = []
    node = descendant.pk
    while node != ancestor.pk:
        chain.append(came_by[node])
        node = came_by[node].parent_id
    chain.reverse()
    versions = [ancestor, *[edge.child for edge in chain[:-1]], descendant]
    return LineagePath(ancestor, descendant, versions, chain, all_edges)
