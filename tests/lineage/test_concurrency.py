"""Concurrent lineage writes on PostgreSQL: two connections cannot close a cycle between them,
and a hold placed while a descendant is being registered still reaches it.

Each test makes the two transactions meet *after* their checks and *before* their writes (a
barrier inside the service). With the lineage lock the second one waits at the lock instead,
the first one's wait times out and it commits, and the second then sees its work.
"""

import contextlib
import threading

import pytest
from django.db import connection, connections

from lineage import services
from lineage.models import HeldThrough, LineageEdge
from lineage.services import edges, holds
from registry.errors import InvalidInput
from tests.conftest import digest

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (set DATABASE_URL): SQLite serialises writers itself",
    ),
]

MEETING_TIMEOUT = 1.5


def meet(barrier: threading.Barrier) -> None:
    # A broken barrier means the other transaction is waiting for the lock: expected.
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=MEETING_TIMEOUT)


def run_together(*calls):
    """Run each call in its own thread (its own database connection); return results or
    the exceptions raised."""
    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def work(index: int, call) -> None:
        try:
            start.wait()
            results[index] = call()
        except Exception as error:  # reported to the test, not swallowed
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.fixture
def checks_meet(monkeypatch):
    """Make each edge insertion wait for the other one right after its cycle check."""
    barrier = threading.Barrier(2)
    check = edges._would_close_cycle

    def check_then_meet(child_id, parent_ids):
        found = check(child_id, parent_ids)
        meet(barrier)
        return found

    monkeypatch.setattr(edges, "_would_close_cycle", check_then_meet)


def test_two_concurrent_edges_cannot_make_a_two_version_cycle(make_version, engineer, checks_meet):
    first, second = make_version(), make_version()
    results = run_together(
        lambda: services.edge_create(
            actor=engineer, child=first, parent=second, relation="finetune"
        ),
        lambda: services.edge_create(
            actor=engineer, child=second, parent=first, relation="finetune"
        ),
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1, results
    assert isinstance(refused[0], InvalidInput) and "would make a cycle" in refused[0].message
    assert LineageEdge.objects.count() == 1


def test_concurrent_edges_with_no_shared_version_cannot_close_a_longer_cycle(
    make_version, derive, engineer, checks_meet
):
    # p ← q and r ← s exist. Adding p ← s and r ← q at once would close p ← s ← r ← q ← p,
    # though the two insertions touch disjoint rows: locking only their endpoints would not do.
    p, r = make_version(), make_version()
    q, s = derive(p), derive(r)
    results = run_together(
        lambda: services.edge_create(actor=engineer, child=p, parent=s, relation="finetune"),
        lambda: services.edge_create(actor=engineer, child=r, parent=q, relation="finetune"),
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1, results
    assert "would make a cycle" in refused[0].message
    assert LineageEdge.objects.count() == 3


def test_a_hold_placed_during_a_registration_reaches_the_new_descendant(
    monkeypatch, base, derive, make_version, engineer, compliance_user
):
    tuned = derive(base)
    child = make_version()
    barrier = threading.Barrier(2)
    propagate, audit = edges._propagate_holds, holds.audit_record

    def propagate_after_meeting(child_id, parent_ids):
        meet(barrier)
        return propagate(child_id, parent_ids)

    def audit_after_meeting(**kwargs):
        if kwargs["action"] == "hold.place":
            meet(barrier)
        return audit(**kwargs)

    monkeypatch.setattr(edges, "_propagate_holds", propagate_after_meeting)
    monkeypatch.setattr(holds, "audit_record", audit_after_meeting)
    hold, edge = run_together(
        lambda: services.hold_place(actor=compliance_user, version=base, reason="withdrawn"),
        lambda: services.edge_create(
            actor=engineer, child=child, parent=tuned, relation="finetune"
        ),
    )
    assert not isinstance(hold, Exception) and not isinstance(edge, Exception), (hold, edge)
    held = set(HeldThrough.objects.filter(hold=hold).values_list("version_id", flat=True))
    assert held == {base.pk, tuned.pk, child.pk}


def _registration(engineer, name: str, parent):
    return lambda: services.registration_create(
        actor=engineer,
        model=name,
        version="v1",
        artefact_digest=digest(name),
        parents=[services.ParentSpec(parent, "finetune")],
        create_model={"team": "acme"},
    )


def test_registrations_hold_the_lineage_lock_together(monkeypatch, base, engineer):
    """Two registrations meet while both hold the lineage lock: neither queues behind the
    other (a new version's edges cannot close a cycle)."""
    barrier = threading.Barrier(2)
    broken: list[bool] = []
    propagate = edges._propagate_holds

    def propagate_after_meeting(child_id, parent_ids):
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            broken.append(True)
        return propagate(child_id, parent_ids)

    monkeypatch.setattr(edges, "_propagate_holds", propagate_after_meeting)
    results = run_together(
        _registration(engineer, "acme/first", base), _registration(engineer, "acme/second", base)
    )
    assert not any(isinstance(r, Exception) for r in results), results
    assert not broken
    assert LineageEdge.objects.filter(parent=base).count() == 2


def test_a_hold_placed_during_a_registration_reaches_the_new_version(
    monkeypatch, base, derive, engineer, compliance_user
):
    """A registration shares the lineage lock with other registrations only: a hold spreading
    over descendants still waits for it, and then reaches its new version."""
    tuned = derive(base)
    barrier = threading.Barrier(2)
    propagate, audit = edges._propagate_holds, holds.audit_record

    def propagate_after_meeting(child_id, parent_ids):
        meet(barrier)
        return propagate(child_id, parent_ids)

    def audit_after_meeting(**kwargs):
        if kwargs["action"] == "hold.place":
            meet(barrier)
        return audit(**kwargs)

    monkeypatch.setattr(edges, "_propagate_holds", propagate_after_meeting)
    monkeypatch.setattr(holds, "audit_record", audit_after_meeting)
    hold, version = run_together(
        lambda: services.hold_place(actor=compliance_user, version=base, reason="withdrawn"),
        _registration(engineer, "acme/student", tuned),
    )
    assert not isinstance(hold, Exception) and not isinstance(version, Exception), (hold, version)
    held = set(HeldThrough.objects.filter(hold=hold).values_list("version_id", flat=True))
    assert held == {base.pk, tuned.pk, version.pk}
