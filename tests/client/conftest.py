"""The Python client against a live test server, authenticated with a real token."""

import pytest
from rest_framework.authtoken.models import Token

from pedigree_client import Client
from registry.models import StagePolicy


@pytest.fixture
def store(settings, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    settings.ARTEFACT_ROOTS = [store]
    settings.ARTEFACT_STORE = store
    return store


@pytest.fixture
def token(engineer) -> str:
    return Token.objects.create(user=engineer).key


@pytest.fixture
def pedigree(live_server, token, store) -> Client:
    return Client(live_server.url, token)


@pytest.fixture
def base(make_model, make_version):
    """The upstream base everything is derived from, shared with the whole organisation."""
    model = make_model(
        "sentence-transformers/all-MiniLM-L6-v2", kind="upstream", visibility="internal"
    )
    return make_version(model, version="main")


@pytest.fixture
def policy(db):
    """Staging needs complete metadata; production also one approval. (update_or_create:
    transactional tests flush the seeded policies.)"""
    for stage, checks, approvals in [
        ("staging", ["metadata"], 0),
        ("production", ["metadata", "approvals"], 1),
    ]:
        StagePolicy.objects.update_or_create(
            stage=stage,
            risk_tier="limited",
            defaults={"required_checks": checks, "approvals_required": approvals},
        )
