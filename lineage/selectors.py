"""Reads of the lineage DAG. Every walk is ONE recursive SQL query (WITH RECURSIVE), portable
between SQLite and PostgreSQL, never a Python loop of queries.

Two layers:

* `*_ids(...)` return a `RawSQL` expression selecting version ids, unrestricted by team, for
  composing into other querysets (`ModelVersion.objects.filter(pk__in=ancestor_ids(v.pk))`).
  Governance code (licence inheritance, hold propagation, gate checks) must see every
  ancestor, whoever asks.
* `ancestors_of(user, version)` and friends return querysets of versions restricted to what
  `user` may see, for lists shown to people.

Walks use `UNION` (not `UNION ALL`), so a version reached along several paths of a merge-heavy
DAG is visited once. Edges point child → parent; "up" follows them to ancestors.
"""

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

from lineage.models import DatasetRole, HeldThrough, Hold, LineageEdge, TrainingDataset, TrainingRun
from registry.gates import GateContext
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel
from registry.selectors import is_compliance, versions_visible_to

Direction = Literal["up", "down"]

# "Trained on" a dataset version: the roles whose data shaped the weights. Validation data
# steers early stopping and model selection, so it counts; test data only measured the result.
TRAINED_ON_ROLES: tuple[str, ...] = (DatasetRole.TRAIN, DatasetRole.VALIDATION)
# A picture or JSON graph larger than this is cut (and says so); ask for a depth instead.
GRAPH_MAX_NODES = 400


def sql(template: str, **parts: str | int) -> str:
    """Fill a SQL template's `{placeholders}`: `{edge}`, `{version}`, `{model}`, `{run}`,
    `{run_data}`, `{dataset_version}`, `{dataset}`, `{held}` are table names from model
    metadata; `parts` are fragments built by the caller (CTEs, `%s` lists, integer limits).
    Values never pass through here: they stay parameters.
    """
    tables = {
        "edge": LineageEdge._meta.db_table,
        "version": ModelVersion._meta.db_table,
        "model": RegisteredModel._meta.db_table,
        "run": TrainingRun._meta.db_table,
        "run_data": TrainingDataset._meta.db_table,
        "dataset_version": DatasetVersion._meta.db_table,
        "dataset": Dataset._meta.db_table,
        "held": HeldThrough._meta.db_table,
    }
    return template.format(**tables, **parts)


def marks(count: int) -> str:
    """`%s, %s, …`: placeholders for an IN list of `count` parameters."""
    return ", ".join(["%s"] * count)


def walk_cte(name: str, direction: Direction, seed_sql: str, max_depth: int | None) -> str:
    """A recursive CTE `name(id[, depth])` from the ids of `seed_sql` (depth 0) along edges.

    With `max_depth`, rows carry their distance so the walk can stop; without it they carry
    only the id, so UNION visits each version once however many paths lead to it.
    """
    step, join = ("parent_id", "child_id") if direction == "up" else ("child_id", "parent_id")
    if max_depth is None:
        return sql(
            "{name}(id) AS ({seed} UNION "
            "SELECT e.{step} FROM {edge} e JOIN {name} w ON e.{join} = w.id)",
            name=name,
            seed=seed_sql,
            step=step,
            join=join,
        )
    return sql(
        "{name}(id, depth) AS (SELECT s.id, 0 FROM ({seed}) s UNION "
        "SELECT e.{step}, w.depth + 1 FROM {edge} e JOIN {name} w ON e.{join} = w.id "
        "WHERE w.depth < {limit})",
        name=name,
        seed=seed_sql,
        step=step,
        join=join,
        limit=int(max_depth),
    )


def seed_sql(count: int = 1) -> str:
    """Select the ids of `count` versions given as parameters (the start of a walk)."""
    return sql("SELECT id FROM {version} WHERE id IN ({ids})", ids=marks(count))


def _seed(version_id: int) -> tuple[str, list]:
    return seed_sql(), [int(version_id)]


def _check_depth(max_depth: int | None) -> None:
    if max_depth is not None and max_depth < 0:
        raise ValueError("max_depth must be zero or more")


def _relatives_sql(
    version_id: int, direction: Direction, *, max_depth: int | None, include_self: bool
) -> RawSQL:
    _check_depth(max_depth)
    seed, params = _seed(version_id)
    where = "" if include_self else " WHERE id <> %s"
    return RawSQL(  # noqa: S611 (built by `sql`: identifiers only, values are parameters)
        sql(
            "WITH RECURSIVE {walk} SELECT id FROM walk{where}",
            walk=walk_cte("walk", direction, seed, max_depth),
            where=where,
        ),
        params if include_self else [*params, int(version_id)],
    )


def ancestor_ids(
    version_id: int, *, max_depth: int | None = None, include_self: bool = False
) -> RawSQL:
    """Ids of every version `version_id` was derived from, at most `max_depth` edges up."""
    return _relatives_sql(version_id, "up", max_depth=max_depth, include_self=include_self)


def descendant_ids(
    version_id: int, *, max_depth: int | None = None, include_self: bool = False
) -> RawSQL:
    """Ids of every version derived from `version_id`, at most `max_depth` edges down."""
    return _relatives_sql(version_id, "down", max_depth=max_depth, include_self=include_self)


def root_ids(version_id: int) -> RawSQL:
    """Ids of the root base models of `version_id`: ancestors (or itself) with no parents."""
    seed, params = _seed(version_id)
    return RawSQL(  # noqa: S611 (built by `sql`: identifiers only, values are parameters)
        sql(
            "WITH RECURSIVE {walk} SELECT w.id FROM walk w "
            "WHERE NOT EXISTS (SELECT 1 FROM {edge} p WHERE p.child_id = w.id)",
            walk=walk_cte("walk", "up", seed, None),
        ),
        params,
    )


def trained_on_ids(dataset_version_id: int, *, roles: Sequence[str] = TRAINED_ON_ROLES) -> RawSQL:
    """Ids of every version trained on the dataset version: those whose run used it in one of
    `roles`, plus all their descendants (a fine-tune of a model inherits what it learnt)."""
    if not roles:
        raise ValueError("name at least one dataset role")
    seed = sql(
        "SELECT r.version_id FROM {run} r JOIN {run_data} d ON d.run_id = r.id "
        "WHERE d.dataset_version_id = %s AND d.role IN ({roles})",
        roles=marks(len(roles)),
    )
    return RawSQL(  # noqa: S611 (built by `sql`: identifiers only, values are parameters)
        sql("WITH RECURSIVE {walk} SELECT id FROM walk", walk=walk_cte("walk", "down", seed, None)),
        [int(dataset_version_id), *roles],
    )


def ancestors_of(
    user, version: ModelVersion, *, max_depth: int | None = None
) -> QuerySet[ModelVersion]:
    return versions_visible_to(user).filter(pk__in=ancestor_ids(version.pk, max_depth=max_depth))


def descendants_of(
    user, version: ModelVersion, *, max_depth: int | None = None
) -> QuerySet[ModelVersion]:
    return versions_visible_to(user).filter(pk__in=descendant_ids(version.pk, max_depth=max_depth))


def roots_of(user, version: ModelVersion) -> QuerySet[ModelVersion]:
    return versions_visible_to(user).filter(pk__in=root_ids(version.pk))


def trained_on(
    user, dataset_version: DatasetVersion, *, roles: Sequence[str] = TRAINED_ON_ROLES
) -> QuerySet[ModelVersion]:
    """Versions trained on `dataset_version` directly or through an ancestor, each annotated
    with `trained_directly` (its own run used the data)."""
    direct = TrainingDataset.objects.filter(
        run__version=OuterRef("pk"), dataset_version=dataset_version, role__in=roles
    )
    return (
        versions_visible_to(user)
        .filter(pk__in=trained_on_ids(dataset_version.pk, roles=roles))
        .annotate(trained_directly=Exists(direct))
    )


def parent_edges(version: ModelVersion) -> QuerySet[LineageEdge]:
    return (
        LineageEdge.objects.filter(child=version)
        .select_related("parent__model__team", "created_by")
        .order_by("id")
    )


def pinned_parents(version: ModelVersion) -> list[LineageEdge]:
    """`parent_edges` with only what gates compare: each parent's name, label and current digest
    beside the digest pinned on the edge."""
    return list(
        parent_edges(version)
        .select_related(None)
        .select_related("parent__model")
        .only(
            "child_id",
            "relation",
            "parent_digest",
            "parent__version",
            "parent__artefact_digest",
            "parent__model__name",
        )
    )


def gate_parent_edges(context: GateContext) -> list[LineageEdge]:
    """`pinned_parents` of the version a gate evaluates, read once for all its checks."""
    return context.shared("lineage.parents", lambda: pinned_parents(context.version))


def training_run_of(version: ModelVersion) -> TrainingRun | None:
    return (
        TrainingRun.objects.filter(version=version)
        .select_related("run_by", "recorded_by", "version__model")
        .prefetch_related("datasets__dataset_version__dataset")
        .first()
    )


def active_holds_on(version_id: int) -> QuerySet[Hold]:
    """Active holds holding `version_id`, placed on it or on any ancestor (why it is held)."""
    return (
        Hold.objects.filter(held_versions__version_id=version_id, lifted_at__isnull=True)
        .select_related("version__model", "placed_by")
        .order_by("placed_at", "id")
    )


def holds_visible_to(user) -> QuerySet[Hold]:
    """Holds placed on versions the user may see."""
    holds = Hold.objects.select_related("version__model", "placed_by", "lifted_by")
    if is_compliance(user):
        return holds
    return holds.filter(version__in=versions_visible_to(user).values("pk"))


def held_count(hold: Hold) -> int:
    return HeldThrough.objects.filter(hold=hold).count()


# --- Graphs ---------------------------------------------------------------------------------


@dataclass
class LineageGraph:
    """A neighbourhood of the DAG around `focus`, with what is needed to draw or serialise it.

    `visible_ids` are the versions the viewer may see; others are still nodes (the shape of a
    family tree is not secret) but are shown without name, digest or stage.
    """

    focus: ModelVersion
    versions: dict[int, ModelVersion]
    edges: list[LineageEdge]
    datasets: list[TrainingDataset]
    holds: dict[int, list[Hold]]
    visible_ids: set[int]
    truncated: bool = False
    generation: dict[int, int] = field(default_factory=dict)


def _neighbourhood_sql(
    version_id: int, *, walks: dict[Direction, int | None], limit: int
) -> RawSQL:
    """Ids of `version_id` and of its relatives along `walks` (direction → depth limit or None
    for no limit), nearest first (unlimited walks count as near), at most `limit` of them."""
    seed, seed_params = _seed(version_id)
    ctes = []
    selects = [sql("SELECT id, -1 AS depth FROM ({seed}) s", seed=seed)]
    params = list(seed_params)
    for direction, depth in walks.items():
        _check_depth(depth)
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
    user,
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
    datasets = list(
        TrainingDataset.objects.filter(run__version_id__in=ids)
        .select_related("run", "dataset_version__dataset")
        .order_by("run__version_id", "role", "id")
    )
    holds: dict[int, list[Hold]] = defaultdict(list)
    for through in (
        HeldThrough.objects.filter(version_id__in=ids, hold__lifted_at__isnull=True)
        .select_related("hold__version__model", "hold__placed_by")
        .order_by("hold__placed_at", "hold_id")
    ):
        holds[through.version_id].append(through.hold)
    visible = _visible_among(user, versions)
    return LineageGraph(
        focus=version,
        versions=versions,
        edges=edges,
        datasets=datasets,
        holds=dict(holds),
        visible_ids=visible,
        truncated=truncated,
        generation=_generations(version.pk, edges),
    )


def fetch_ids(expression: RawSQL) -> list[int]:
    """Run an id walk (`ancestor_ids(...)` and friends) on its own: the fastest way to get
    the ids when no other condition applies (no join back to the versions table)."""
    with connection.cursor() as cursor:
        cursor.execute(expression.sql, expression.params)
        return [row[0] for row in cursor.fetchall()]


def _visible_among(user, ids: Iterable[int]) -> set[int]:
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
