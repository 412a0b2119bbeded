"""pedigree-client: the Python client and `pedigree` command line of the Pedigree registry."""

from pedigree_client.client import Client
from pedigree_client.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PedigreeError,
    PermissionDenied,
    PromotionRefused,
    Unavailable,
)
from pedigree_client.integrations import TrackedRun, track
from pedigree_client.results import (
    CheckRow,
    DatasetVersion,
    Decision,
    EvaluationRun,
    GateResult,
    Lineage,
    Version,
)

__all__ = [
    "CheckRow",
    "Client",
    "Conflict",
    "DatasetVersion",
    "Decision",
    "EvaluationRun",
    "GateResult",
    "InvalidInput",
    "Lineage",
    "NotFound",
    "PedigreeError",
    "PermissionDenied",
    "PromotionRefused",
    "TrackedRun",
    "Unavailable",
    "Version",
    "track",
]
