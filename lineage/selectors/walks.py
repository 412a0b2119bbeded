"""The recursive walks: SQL building blocks, the id walks governance composes into other
queries, and the querysets of versions shown to people."""

from collections.abc import Sequence
from typing import Literal

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

from lineage.models import (
    DatasetRole,
    HeldThrough,
    LineageEdge,
    TrainingDataset,
    TrainingRun,
    UpstreamTrainingData,
)
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel
from registry.selectors import versions_visible_to
from registry.types import Reader

Direction = Literal["up", "down"]

# "Trained on" a dataset version: the roles whose data shaped the weights. Validation data
# steers early stopping and model selection, so it counts; test data only measured the result.
TRAINED_ON_ROLES: tuple[str, ...] = (DatasetRole.TRAIN, DatasetRole.VALIDATION)


def sql(template: str, **parts: str | int) -> str:
    """Fill a SQL template's `{placeholders}`: `{edge}`, `{version}`, `{model}`, `{run}`,
    `{run_data}`, `{declared_data}`, `{dataset_version}`, `{dataset}`, `{held}` are table names
    from model metadata; `parts` are fragments built by the caller (CTEs, `%s` lists, integer
    limits). Values never pass through here: they stay parameters.
    """
    tables = {
        "edge": LineageEdge._meta.db_table,
        "version": ModelVersion._meta.db_table,
        "model": RegisteredModel._meta.db_table,
        "run": TrainingRun._meta.db_table,
        "run_data": TrainingDataset._meta.db_table,
        "declared_data": UpstreamTrainingData._meta.db_table,
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


def seed_of(version_id: int) -> tuple[str, list[int]]:
    """The start of a walk from one version: its SQL and parameters."""
    return seed_sql(), [int(version_id)]


def check_depth(max_depth: int | None) -> None:
    """Refuse a negative depth limit (None: no limit)."""
    if max_depth is not None and max_depth < 0:
        raise ValueError("max_depth must be zero or more")


def _relatives_sql(
    version_id: int, direction: Direction, *, max_depth: int | None, include_self: bool
) -> RawSQL:
    check_depth(max_depth)
    seed, params = seed_of(version_id)
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
    seed, params = seed_of(version_id)
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
    # The versions whose upstream card declares it count as trained on it too.
    seed = sql(
        "SELECT r.version_id FROM {run} r JOIN {run_data} d ON d.run_id = r.id "
        "WHERE d.dataset_version_id = %s AND d.role IN ({roles}) "
        "UNION SELECT u.version_id FROM {declared_data} u "
        "WHERE u.dataset_version_id = %s AND 'train' IN ({roles})",
        roles=marks(len(roles)),
    )
    return RawSQL(  # noqa: S611 (built by `sql`: identifiers only, values are parameters)
        sql("WITH RECURSIVE {walk} SELECT id FROM walk", walk=walk_cte("walk", "down", seed, None)),
        [int(dataset_version_id), *roles, int(dataset_version_id), *roles],
    )


def ancestors_of(
    user: Reader, version: ModelVersion, *, max_depth: int | None = None
) -> QuerySet[ModelVersion]:
    return versions_visible_to(user).filter(pk__in=ancestor_ids(version.pk, max_depth=max_depth))


def descendants_of(
    user: Reader, version: ModelVersion, *, max_depth: int | None = None
) -> QuerySet[ModelVersion]:
    return versions_visible_to(user).filter(pk__in=descendant_ids(version.pk, max_depth=max_depth))


def roots_of(user: Reader, version: ModelVersion) -> QuerySet[ModelVersion]:
    return versions_visible_to(user).filter(pk__in=root_ids(version.pk))


def trained_on(
    user: Reader, dataset_version: DatasetVersion, *, roles: Sequence[str] = TRAINED_ON_ROLES
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


def fetch_ids(expression: RawSQL) -> list[int]:
    """Run an id walk (`ancestor_ids(...)` and friends) on its own: the fastest way to get
    the ids when no other condition applies (no join back to the versions table)."""
    with connection.cursor() as cursor:
        cursor.execute(expression.sql, expression.params)
        return [row[0] for row in cursor.fetchall()]
