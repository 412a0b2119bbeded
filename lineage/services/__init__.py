"""Writes to the lineage: derivation edges, training runs, one-call registration, holds.

Every write checks permission, validates, takes the lineage lock and is audited in the same
transaction. Bad input raises a `registry.errors` error (→ 4xx) and the surrounding
transaction leaves nothing behind.
"""

from lineage.services.edges import MAX_PARENTS, ParentSpec, edge_create, edges_create, main_relation
from lineage.services.holds import hold_lift, hold_place
from lineage.services.proposals import edge_correction_submit, edges_submit, training_run_submit
from lineage.services.registration import (
    Registration,
    RegistrationPlan,
    registration_check,
    registration_create,
    registration_label_check,
    registration_record,
)
from lineage.services.shared import LINEAGE_LOCK_KEY, lineage_write_lock
from lineage.services.training import MAX_DATASETS, DatasetUse, training_run_record
from lineage.services.upstream import edge_correct

__all__ = [
    "LINEAGE_LOCK_KEY",
    "MAX_DATASETS",
    "MAX_PARENTS",
    "DatasetUse",
    "ParentSpec",
    "Registration",
    "RegistrationPlan",
    "edge_correct",
    "edge_correction_submit",
    "edge_create",
    "edges_create",
    "edges_submit",
    "hold_lift",
    "hold_place",
    "lineage_write_lock",
    "main_relation",
    "registration_check",
    "registration_create",
    "registration_label_check",
    "registration_record",
    "training_run_record",
    "training_run_submit",
]
