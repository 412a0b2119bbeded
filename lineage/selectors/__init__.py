"""Reads of the lineage DAG. Every walk is ONE recursive SQL query (WITH RECURSIVE), portable
between SQLite and PostgreSQL, never a Python loop of queries.

Three layers:

* `*_ids(...)` return a `RawSQL` expression selecting version ids, unrestricted by team, for
  composing into other querysets (`ModelVersion.objects.filter(pk__in=ancestor_ids(v.pk))`).
  Governance code (licence inheritance, hold propagation, gate checks) must see every
  ancestor, whoever asks.
* `ancestry(version_id)` returns the whole ancestry as plain rows (edges, training data, the
  licence fields of each ancestor and dataset version), also unrestricted: the licence check
  reads it on every gate call.
* `ancestors_of(user, version)` and friends return querysets of versions restricted to what
  `user` may see, for lists shown to people.

Walks use `UNION` (not `UNION ALL`), so a version reached along several paths of a merge-heavy
DAG is visited once. Edges point child → parent; "up" follows them to ancestors.
"""

from lineage.selectors.ancestry import Ancestry, AncestryEdge, AncestryNode, TrainingUse, ancestry
from lineage.selectors.graph import (
    GRAPH_MAX_NODES,
    LineageGraph,
    LineagePath,
    lineage_graph,
    lineage_path,
)
from lineage.selectors.records import (
    active_holds_on,
    gate_parent_edges,
    held_count,
    holds_visible_to,
    parent_edges,
    pinned_parents,
    training_data_of,
    training_run_of,
)
from lineage.selectors.walks import (
    TRAINED_ON_ROLES,
    ancestor_ids,
    ancestors_of,
    descendant_ids,
    descendants_of,
    fetch_ids,
    marks,
    root_ids,
    roots_of,
    seed_sql,
    sql,
    trained_on,
    trained_on_ids,
    walk_cte,
)

__all__ = [
    "GRAPH_MAX_NODES",
    "TRAINED_ON_ROLES",
    "Ancestry",
    "AncestryEdge",
    "AncestryNode",
    "LineageGraph",
    "LineagePath",
    "TrainingUse",
    "active_holds_on",
    "ancestor_ids",
    "ancestors_of",
    "ancestry",
    "descendant_ids",
    "descendants_of",
    "fetch_ids",
    "gate_parent_edges",
    "held_count",
    "holds_visible_to",
    "lineage_graph",
    "lineage_path",
    "marks",
    "parent_edges",
    "pinned_parents",
    "root_ids",
    "roots_of",
    "seed_sql",
    "sql",
    "trained_on",
    "trained_on_ids",
    "training_data_of",
    "training_run_of",
    "walk_cte",
]
