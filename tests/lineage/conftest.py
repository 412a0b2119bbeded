"""Lineage fixtures: a base model, and a helper deriving versions from parents."""

import pytest

from lineage import services
from lineage.services import ParentSpec


@pytest.fixture
def base(make_model, make_version):
    """The upstream base everything is derived from, shared with the whole organisation."""
    model = make_model(
        "sentence-transformers/all-MiniLM-L6-v2", kind="upstream", visibility="internal"
    )
    return make_version(model, version="main")


@pytest.fixture
def derive(make_version, engineer):
    """`derive(p1, p2, relation="merge")`: a new version whose parents are the given versions."""

    def make(*parents, relation="finetune", model=None, actor=None, **extra):
        child = make_version(model, actor=actor, **extra)
        if parents:
            services.edges_create(
                actor=actor or child.registered_by,
                child=child,
                parents=[ParentSpec(parent, relation) for parent in parents],
            )
        return child

    return make


@pytest.fixture
def chain(base, derive):
    """base ← v1 ← v2 ← … : `chain(n)` returns [base, v1, …, vn]."""

    def make(length: int, *, start=None):
        versions = [start or base]
        for _ in range(length):
            versions.append(derive(versions[-1]))
        return versions

    return make


@pytest.fixture
def make_version_of(make_model, make_version, outsider, other_team):
    """A version of a globex model (private to globex unless `visibility="internal"`)."""

    def make(name: str, *, version="v1", visibility="team", **extra):
        model = make_model(name, actor=outsider, owner=other_team, visibility=visibility)
        return make_version(model, version=version, actor=outsider, **extra)

    return make


@pytest.fixture
def officer(make_user):
    """A compliance officer with the admin permissions the demo grants (no deletions)."""
    from django.contrib.auth.models import Permission

    user = make_user("olivia", compliance=True, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["registry", "lineage"]).exclude(
            codename__startswith="delete_"
        )
    )
    return user
