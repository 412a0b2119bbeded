"""Writes of suites and runs: defining suites, requesting, executing, cancelling, sweeping.

Every state change is audited in its transaction. A run's life on a worker is a sequence of
conditional UPDATEs keyed by the claim token, so a redelivered task, a worker that lost its
claim or a concurrent cancel can never record a second result:

    claim        queued (or running with a stale heartbeat) → running, new token
    heartbeat    running + token → progress, last_progress_at
    succeed      running + token → succeeded, plus the one result row (unique per run)
    fail         running + token → failed, with the error
    cancel       queued | running → cancelled (the worker notices at its next heartbeat)
    sweep        running with a stale heartbeat → queued again, or failed after N attempts

`suites` defines suites, `runs` requests (one or several at once), cancels and sweeps runs,
`execution` runs them on a worker.
"""

from evaluators.services.execution import run_execute, worker_name
from evaluators.services.runs import (
    SweepReport,
    run_cancel,
    run_request,
    runs_request,
    runs_sweep,
)
from evaluators.services.suites import SUITE_UPDATABLE, suite_create, suite_update

__all__ = [
    "SUITE_UPDATABLE",
    "SweepReport",
    "run_cancel",
    "run_execute",
    "run_request",
    "runs_request",
    "runs_sweep",
    "suite_create",
    "suite_update",
    "worker_name",
]
