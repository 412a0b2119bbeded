"""The ancestry as governance reads it: plain rows in one recursive query, no model instances."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from lineage.selectors.walks import TRAINED_ON_ROLES, marks, seed_sql, sql, walk_cte
from registry.memo import remembered


@dataclass(frozen=True, slots=True)
class AncestryEdge:
    """An edge above the version: `child_id` was made from `parent_id` by `relation`."""

    child_id: int
    parent_id: int
    relation: str
    inferred: bool = False  # inferred by an import, not yet confirmed by a person


@dataclass(frozen=True, slots=True)
class TrainingUse:
    """The version or one of its ancestors (`version_id`) trained on a dataset version."""

    dataset_version_id: int
    version_id: int
    role: str


@dataclass(frozen=True, slots=True)
class AncestryNode:
    """An ancestor, or a dataset version the ancestry trained on: its name (MODEL@VERSION or
    DATASET@VERSION), its licence fields, whether it came from outside the registry (an
    upstream model; every dataset) and whether that origin is pinned (a Hub revision; a
    dataset's Hub id, source or URI)."""

    id: int
    ref: str
    licence_declared: str
    licence_concluded: str
    upstream: bool
    evidence: bool
    unresolved: bool = False  # an upstream reference not imported yet
    review: bool = False  # the declared licence came from an ambiguous Hub id, unconcluded
    # A Hub dataset an upstream card declares as training data (a reference, no files).
    declared: bool = False


@dataclass(frozen=True)
class Ancestry:
    """Everything above a version: its edges (each parent in `ancestors`, by version id) and the
    training data of the version and its ancestors (each dataset version in `datasets`)."""

    edges: list[AncestryEdge]
    ancestors: dict[int, AncestryNode]
    training: list[TrainingUse]
    datasets: dict[int, AncestryNode]


# One walk up from the version, then its edges (each with the parent) and the training data of
# the version and its ancestors (each with the dataset version), told apart by the first column:
# 1 for a run's data, 2 for the datasets an upstream card declares (always training data).
_ANCESTRY_SQL = """
WITH RECURSIVE {walk}
SELECT 0, e.id, e.child_id, e.parent_id, e.relation, m.name, v.version,
       v.licence_declared, v.licence_concluded, m.kind = 'upstream',
       v.hub_revision <> '' AND NOT v.unresolved, v.unresolved,
       e.relation_inferred AND e.relation_confirmed_by_id IS NULL, v.licence_review_required
  FROM {edge} e JOIN walk w ON e.child_id = w.id
  JOIN {version} v ON v.id = e.parent_id JOIN {model} m ON m.id = v.model_id
UNION ALL
SELECT 1, d.id, r.version_id, d.dataset_version_id, d.role, s.name, dv.version,
       dv.licence_declared, dv.licence_concluded, TRUE,
       s.hub_id <> '' OR s.source <> '' OR dv.uri <> '', FALSE, FALSE, FALSE
  FROM {run_data} d JOIN {run} r ON r.id = d.run_id JOIN walk w ON r.version_id = w.id
  JOIN {dataset_version} dv ON dv.id = d.dataset_version_id JOIN {dataset} s ON s.id = dv.dataset_id
 WHERE d.role IN ({roles})
UNION ALL
SELECT 2, u.id, u.version_id, u.dataset_version_id, 'train', s.name, dv.version,
       dv.licence_declared, dv.licence_concluded, TRUE, TRUE, FALSE, FALSE, FALSE
  FROM {declared_data} u JOIN walk w ON u.version_id = w.id
  JOIN {dataset_version} dv ON dv.id = u.dataset_version_id JOIN {dataset} s ON s.id = dv.dataset_id
 WHERE 'train' IN ({roles})
ORDER BY 1, 2
"""


def ancestry(version_id: int, *, roles: Sequence[str] = TRAINED_ON_ROLES) -> Ancestry:
    """The ancestry of `version_id`, unrestricted by team: every edge above it and the data the
    version and its ancestors were trained on (in `roles`). ONE recursive query returning plain
    rows, no model instances: the licence check reads this on every gate call. Inside a
    `read_memo()` block (a gate evaluation and its answer) it is read once and shared by the
    checks and the redaction that ask for it; callers only read it."""
    return remembered(
        ("lineage.ancestry", int(version_id), tuple(roles)), lambda: _walked(version_id, roles)
    )


def _walked(version_id: int, roles: Sequence[str]) -> Ancestry:
    query = sql(
        _ANCESTRY_SQL, walk=walk_cte("walk", "up", seed_sql(), None), roles=marks(len(roles))
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [int(version_id), *roles, *roles])
        rows = cursor.fetchall()
    found = Ancestry(edges=[], ancestors={}, training=[], datasets={})
    # `how`: the edge's relation, or the role the dataset version played in training.
    for row in rows:
        is_use, _, user_id, target_id, how, name, label, declared, concluded, up, evidence = row[
            :11
        ]
        unresolved, inferred, review = bool(row[11]), bool(row[12]), bool(row[13])
        node = AncestryNode(
            target_id,
            f"{name}@{label}",
            declared,
            concluded,
            bool(up),
            bool(evidence),
            unresolved,
            review,
            is_use == 2,
        )
        if is_use:
            found.training.append(TrainingUse(target_id, user_id, how))
            found.datasets[target_id] = node
        else:
            found.edges.append(AncestryEdge(user_id, target_id, how, inferred))
            found.ancestors[target_id] = node
    return found
