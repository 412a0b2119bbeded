"""Shared fixtures: users in teams, API clients with real tokens, catalogue factories."""

import itertools
import os

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from registry import services
from registry.models import COMPLIANCE_GROUP, Team

_counter = itertools.count(1)

# Tests never reach the internet: huggingface_hub and transformers read local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# tests/core_only need the core alone installed: tests/registry/test_core_only.py runs them in a
# process of their own with tests/settings_core_only.py, never in another run's settings.
if os.environ.get("DJANGO_SETTINGS_MODULE") != "tests.settings_core_only":
    collect_ignore = ["core_only"]


def digest(seed: int | str = 0) -> str:
    import hashlib

    return hashlib.sha256(str(seed).encode()).hexdigest()


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Each test starts with no request counted against the throttles (kept in the cache)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery(request):
    """Tasks run in-process in tests unless a test starts a real worker (`celery_worker` mark)."""
    from config.celery import app

    eager = "real_worker" not in request.keywords
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _inline_evaluations(settings):
    """In-process evaluations run inside the request that asks for them, so tests read their
    results right after it (tests of the background thread turn this off)."""
    settings.PEDIGREE_EVALUATION_INLINE = True


@pytest.fixture
def make_user(django_user_model):
    def make(username: str | None = None, *, teams=(), compliance=False, **flags):
        user = django_user_model.objects.create_user(
            username=username or f"user{next(_counter)}", password="test-password-123", **flags
        )
        for team in teams:
            team.members.add(user)
        if compliance:
            user.groups.add(Group.objects.get_or_create(name=COMPLIANCE_GROUP)[0])
        return user

    return make


@pytest.fixture
def team(db):
    return Team.objects.create(slug="acme", name="Acme ML")


@pytest.fixture
def other_team(db):
    return Team.objects.create(slug="globex", name="Globex AI")


@pytest.fixture
def engineer(make_user, team):
    return make_user("alice", teams=[team])


@pytest.fixture
def outsider(make_user, other_team):
    return make_user("mallory", teams=[other_team])


@pytest.fixture
def compliance_user(make_user):
    return make_user("carol", compliance=True, is_staff=True)


@pytest.fixture
def api_for():
    def client(user=None) -> APIClient:
        api = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return api

    return client


@pytest.fixture
def make_model(engineer, team):
    def make(name: str | None = None, *, actor=None, owner=None, kind="derived", **extra):
        return services.model_create(
            actor=actor or engineer,
            name=name or f"acme/model-{next(_counter)}",
            kind=kind,
            team=owner or team,
            **extra,
        )

    return make


@pytest.fixture
def make_version(make_model, engineer):
    def make(model=None, *, version: str | None = None, actor=None, **extra):
        model = model or make_model()
        actor = actor or model.created_by or engineer
        extra.setdefault("licence_declared", "Apache-2.0")
        return services.version_create(
            actor=actor,
            model=model,
            version=version or f"v{next(_counter)}",
            artefact_digest=extra.pop("artefact_digest", digest(next(_counter))),
            **extra,
        )

    return make


@pytest.fixture
def make_dataset_version(engineer, team):
    def make(name: str | None = None, *, version="v1", actor=None, owner=None, **extra):
        actor = actor or engineer
        dataset = services.dataset_create(
            actor=actor, name=name or f"acme/data-{next(_counter)}", team=owner or team
        )
        extra.setdefault("licence_declared", "CC-BY-4.0")
        return services.dataset_version_create(
            actor=actor,
            dataset=dataset,
            version=version,
            sha256=extra.pop("sha256", digest(next(_counter))),
            size_bytes=extra.pop("size_bytes", 1024),
            **extra,
        )

    return make


@pytest.fixture
def seeded(db):
    """The data migrations' seeds (stage policies, licence catalogue and default policy): a
    transactional test's flush empties them, so put them back when they are gone."""
    import importlib

    from django.apps import apps

    from licensing.models import (
        HubLicenceMapping,
        Licence,
        LicencePolicy,
        LicencePolicyRevision,
        LicenceRule,
        LicenceTerm,
    )
    from licensing.seeding import seed_catalogue, seed_default_policy

    importlib.import_module("registry.migrations.0003_seed_stage_policies").seed(apps, None)
    if not Licence.objects.exists():
        seed_catalogue(Licence, LicenceTerm, HubLicenceMapping)
    seed_default_policy(LicencePolicy, LicenceRule, LicencePolicyRevision)
