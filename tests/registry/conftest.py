"""Gate fixtures the registry's governance tests share."""

import pytest

from registry import services
from registry.gates import CheckResult
from registry.models import StagePolicy
from registry.plugins import GateCheck, plugins


@pytest.fixture
def policy(db):
    """Only the catalogue's own checks are required: these tests are about the mechanism.

    (update_or_create: transactional tests flush the seeded policies.)
    """
    StagePolicy.objects.update_or_create(
        stage="staging",
        risk_tier="limited",
        defaults={"required_checks": ["metadata"], "approvals_required": 0},
    )
    return StagePolicy.objects.update_or_create(
        stage="production",
        risk_tier="limited",
        defaults={"required_checks": ["metadata", "approvals"], "approvals_required": 1},
    )[0]


@pytest.fixture
def conclude(compliance_user):
    def conclude(version, licence="Apache-2.0"):
        return services.version_update(
            actor=compliance_user, version=version, changes={"licence_concluded": licence}
        )

    return conclude


@pytest.fixture
def complete(make_version, policy, conclude):
    return conclude(
        make_version(
            risk_tier="limited",
            intended_use="Routing support tickets",
            known_limitations="English only",
        )
    )


@pytest.fixture
def flaky_check(monkeypatch):
    """A registered check whose outcome the test controls."""
    state = {"passed": False}

    def check(context):
        return CheckResult("flaky", state["passed"], [] if state["passed"] else ["flaky failed"])

    checks = [*plugins.contributions(GateCheck), GateCheck("flaky", check)]
    monkeypatch.setitem(plugins._contributions, GateCheck, checks)
    return state
