"""Database constraints hold even when the services are bypassed."""

import pytest
from django.db import IntegrityError, transaction

from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel, Team
from tests.conftest import digest

pytestmark = pytest.mark.django_db


def refused(make) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        make()


@pytest.fixture
def model(engineer, team):
    return RegisteredModel.objects.create(
        name="acme/m", kind="derived", team=team, created_by=engineer
    )


def version(model, engineer, **overrides):
    fields = {
        "model": model,
        "version": "v1",
        "artefact_digest": digest(1),
        "registered_by": engineer,
        **overrides,
    }
    return lambda: ModelVersion.objects.create(**fields)


def test_team_slug_unique_and_not_empty(team):
    refused(lambda: Team.objects.create(slug="acme", name="again"))
    refused(lambda: Team.objects.create(slug="", name="blank"))


def test_model_name_unique_and_enums(model, engineer, team):
    refused(
        lambda: RegisteredModel.objects.create(
            name="acme/m", kind="derived", team=team, created_by=engineer
        )
    )
    refused(
        lambda: RegisteredModel.objects.create(
            name="acme/k", kind="sideways", team=team, created_by=engineer
        )
    )
    refused(
        lambda: RegisteredModel.objects.create(
            name="acme/v", kind="derived", visibility="public", team=team, created_by=engineer
        )
    )
    refused(
        lambda: RegisteredModel.objects.create(
            name="", kind="derived", team=team, created_by=engineer
        )
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"artefact_digest": ""},
        {"artefact_digest": "xyz"},
        {"artefact_digest": "F" * 64},
        {"version": ""},
        {"stage": "heaven"},
        {"risk_tier": "extreme"},
        {"hub_revision": "main", "hub_repo_id": "a/b"},
        {"hub_revision": "a" * 40},
        {"parameter_count": -1},
        {"artefact_size": -1},
    ],
)
def test_version_constraints(model, engineer, overrides):
    refused(version(model, engineer, **overrides))


def test_version_unique_per_model(model, engineer):
    version(model, engineer)()
    refused(version(model, engineer, artefact_digest=digest(2)))


def test_dataset_version_constraints(engineer, team):
    dataset = Dataset.objects.create(name="acme/d", team=team, created_by=engineer)

    def make(**overrides):
        fields = {
            "dataset": dataset,
            "version": "v1",
            "sha256": digest(1),
            "size_bytes": 1,
            "registered_by": engineer,
            **overrides,
        }
        return lambda: DatasetVersion.objects.create(**fields)

    refused(make(sha256=""))
    refused(make(size_bytes=-1))
    refused(make(version=""))
    make()()
    refused(make(sha256=digest(2)))
    refused(lambda: Dataset.objects.create(name="acme/d", team=team, created_by=engineer))
