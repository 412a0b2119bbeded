"""pedigree-client: the Python client and `pedigree` command line of the Pedigree registry.

Its names are imported when first used, so that `pedigree` (which imports this package
first) starts without loading the Python client it does not need.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        ComplianceStatus,
        DatasetVersion,
        Decision,
        EvaluationRun,
        Evaluations,
        GateResult,
        Lineage,
        Version,
    )

# Each public name → the module defining it.
_EXPORTS = {
    "Client": "client",
    "Conflict": "errors",
    "InvalidInput": "errors",
    "NotFound": "errors",
    "PedigreeError": "errors",
    "PermissionDenied": "errors",
    "PromotionRefused": "errors",
    "Unavailable": "errors",
    "TrackedRun": "integrations",
    "track": "integrations",
    "CheckRow": "results",
    "ComplianceStatus": "results",
    "DatasetVersion": "results",
    "Decision": "results",
    "EvaluationRun": "results",
    "Evaluations": "results",
    "GateResult": "results",
    "Lineage": "results",
    "Version": "results",
}

__all__ = [
    "CheckRow",
    "Client",
    "ComplianceStatus",
    "Conflict",
    "DatasetVersion",
    "Decision",
    "EvaluationRun",
    "Evaluations",
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pedigree_client.{_EXPORTS[name]}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
