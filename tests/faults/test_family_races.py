"""Concurrent promotion, hold, approval and registration on one family (PostgreSQL, each request
on its own connection, as web processes are): no answer is a 5xx, every hold is placed and
reaches the descendants registered meanwhile, and no promotion gets past a hold that was
committed before the promotion was asked for."""

import random
import threading
import time

import pytest
from django.db import connection, connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from lineage.models import HeldThrough, Hold
from lineage.services import ParentSpec, registration_create
from registry import services
from registry.models import ModelVersion, StagePolicy, WebhookEndpoint

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (set DATABASE_URL): SQLite runs one writer at a time",
    ),
]

ROUNDS = 20


def client_for(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return api


def race(calls: dict) -> dict:
    """Run each call in its own thread and connection, started together; returns for each its
    response with the monotonic times it was sent and answered."""
    barrier = threading.Barrier(len(calls))
    results: dict = {}

    def work(name, call):
        try:
            barrier.wait(timeout=30)
            time.sleep(random.uniform(0, 0.03))  # different interleavings each round
            started = time.monotonic()
            response = call()
            results[name] = (response, started, time.monotonic())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture
def people(make_user, team, seeded):
    StagePolicy.objects.update_or_create(
        stage="staging",
        risk_tier="limited",
        defaults={"required_checks": ["metadata", "lineage_health"], "approvals_required": 0},
    )
    WebhookEndpoint.objects.create(name="ops", url="http://127.0.0.1:9/hook", secret="s")
    return {
        "alice": make_user("alice", teams=[team]),
        "carol": make_user("carol", compliance=True, is_staff=True),
        "dan": make_user("dan", compliance=True, is_staff=True),
    }


def family(round_: int, people) -> tuple[ModelVersion, ModelVersion]:
    alice = people["alice"]
    base = registration_create(
        actor=alice,
        model=f"acme/base-{round_}",
        version="v1",
        artefact_digest=f"{round_:064x}",
        licence_declared="Apache-2.0",
        create_model={"team": "acme"},
    )
    child = registration_create(
        actor=alice,
        model=f"acme/child-{round_}",
        version="v1",
        parents=[ParentSpec(base, "finetune")],
        artefact_digest=f"{round_ + 1000:064x}",
        licence_declared="Apache-2.0",
        risk_tier="limited",
        intended_use="Routing tickets",
        known_limitations="English only",
        create_model={"team": "acme"},
    )
    child = services.version_update(
        actor=people["carol"], version=child, changes={"licence_concluded": "Apache-2.0"}
    )
    return base, child


def requests_of_a_round(round_, base, child, people) -> dict:
    """Promote the child, hold the base, approve the child, register another child of the base:
    each through its own API client (one per web request)."""
    alice, second_alice, carol, dan = (
        client_for(people[name]) for name in ("alice", "alice", "carol", "dan")
    )
    return {
        "promote": lambda: alice.post(
            f"/api/v1/versions/{child.pk}/promote/", {"stage": "staging"}, format="json"
        ),
        "hold": lambda: carol.post(
            "/api/v1/holds/",
            {"version": base.pk, "reason": "upstream licence withdrawn"},
            format="json",
        ),
        "approve": lambda: dan.post(
            f"/api/v1/versions/{child.pk}/approvals/", {"stage": "staging"}, format="json"
        ),
        "register": lambda: second_alice.post(
            "/api/v1/registrations/",
            {
                "model": f"acme/child-{round_}",
                "version": "v2",
                "parents": [{"version": base.pk, "relation": "finetune"}],
                "artefact_digest": f"{round_ + 2000:064x}",
                "licence_declared": "Apache-2.0",
            },
            format="json",
        ),
    }


def test_racing_writes_on_one_family_never_fail_nor_skip_a_hold(people):
    promoted = refused = 0
    for round_ in range(ROUNDS):
        base, child = family(round_, people)
        results = race(requests_of_a_round(round_, base, child, people))
        statuses = {name: response.status_code for name, (response, _, _) in results.items()}
        assert len(results) == 4, f"round {round_}: a request never answered: {statuses}"
        assert all(code < 500 for code in statuses.values()), (round_, statuses, results)
        assert statuses["hold"] == 201 and statuses["approve"] == 201, (round_, statuses)
        assert statuses["register"] == 201, (round_, statuses)

        hold = Hold.objects.get(version=base)
        second = ModelVersion.objects.get(model__name=f"acme/child-{round_}", version="v2")
        held = set(HeldThrough.objects.filter(hold=hold).values_list("version_id", flat=True))
        assert held == {base.pk, child.pk, second.pk}, round_

        promotion, promote_sent, _ = results["promote"]
        _, _, hold_answered = results["hold"]
        child.refresh_from_db()
        if statuses["promote"] == 200:
            promoted += 1
            assert child.stage == "staging"
            assert not hold_answered < promote_sent, f"round {round_}: promoted past a hold"
        else:
            refused += 1
            assert statuses["promote"] == 409, (round_, promotion.content)
            assert child.stage == "development"
            failed = {
                r["check"]
                for r in promotion.json()["error"]["decision"]["results"]
                if r["required"] and not r["passed"]
            }
            assert failed == {"lineage_health"}, (round_, failed)
    assert promoted + refused == ROUNDS
