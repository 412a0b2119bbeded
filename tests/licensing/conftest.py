"""Licensing fixtures: seeded catalogue and policy, upstream bases and derived versions built
through lineage's services."""

import itertools

import pytest

from licensing.models import (
    HubLicenceMapping,
    Licence,
    LicencePolicy,
    LicencePolicyRevision,
    LicenceRule,
    LicenceTerm,
)
from licensing.seeding import seed_catalogue, seed_default_policy
from lineage import services as lineage_services
from lineage.services import DatasetUse, ParentSpec
from registry import services as registry_services
from tests.conftest import digest

_counter = itertools.count(1)

RUN_FOR_RELATION = {
    "finetune": ("full_finetune", {"learning_rate": 2e-5, "epochs": 3}),
    "adapter": ("lora", {"rank": 16, "alpha": 32, "target_modules": ["q_proj", "v_proj"]}),
    "merge": ("merge", {"merge_method": "linear", "weights": [0.5, 0.5]}),
    "quantized": ("quantization", {"scheme": "int8"}),
    "distillation": ("distillation", {"temperature": 2.0}),
    "continued_pretraining": ("continued_pretraining", {"learning_rate": 1e-4}),
}


@pytest.fixture
def licence_tables(db):
    """The catalogue and the default policy. Migrations seed them; a transactional test's
    flush empties them, so seed again when they are gone."""
    if not Licence.objects.exists():
        seed_catalogue(Licence, LicenceTerm, HubLicenceMapping)
    seed_default_policy(LicencePolicy, LicenceRule, LicencePolicyRevision)


@pytest.fixture
def approver(make_user):
    return make_user("dana", compliance=True, is_staff=True)


@pytest.fixture
def upstream(licence_tables, make_model, make_version, engineer):
    """An upstream (Hub) base model version."""

    def make(name: str, licence: str, *, version: str = "main", **extra):
        model = make_model(name, kind="upstream", visibility="internal")
        extra.setdefault("hub_repo_id", name)
        extra.setdefault("hub_revision", f"{next(_counter):040x}")
        return make_version(model, version=version, licence_declared=licence, **extra)

    return make


@pytest.fixture
def minilm(upstream):
    return upstream(
        "sentence-transformers/all-MiniLM-L6-v2",
        "Apache-2.0",
        intended_use="Sentence embeddings",
        known_limitations="English only; truncates at 256 word pieces",
    )


@pytest.fixture
def dataset(licence_tables, make_dataset_version):
    def make(name: str, licence: str, **extra):
        return make_dataset_version(name, licence_declared=licence, **extra)

    return make


@pytest.fixture
def derive(licence_tables, engineer, team):
    """Register a derived version of `parents` (one relation for all) with its training run."""

    def make(
        name: str,
        parents,
        relation: str = "finetune",
        *,
        licence: str = "Apache-2.0",
        version: str | None = None,
        datasets=(),
        actor=None,
        **attributes,
    ):
        parents = parents if isinstance(parents, list | tuple) else [parents]
        method, hyperparameters = RUN_FOR_RELATION[relation]
        return lineage_services.registration_create(
            actor=actor or engineer,
            model=name,
            version=version or f"v{next(_counter)}",
            artefact_digest=digest(f"derived-{next(_counter)}"),
            parents=[ParentSpec(parent, relation) for parent in parents],
            training_run={
                "method": method,
                "hyperparameters": hyperparameters,
                "datasets": [
                    DatasetUse(item, "train") if not isinstance(item, tuple) else DatasetUse(*item)
                    for item in datasets
                ],
            },
            create_model={"team": team.slug},
            licence_declared=licence,
            **attributes,
        )

    return make


@pytest.fixture
def conclude(compliance_user):
    def set_concluded(version, expression: str):
        return registry_services.version_update(
            actor=compliance_user, version=version, changes={"licence_concluded": expression}
        )

    return set_concluded
