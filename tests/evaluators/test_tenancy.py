"""Tenancy of evaluation data: a dataset's file lies in its own team's area, errors do not show a
file's contents, and no result describes a group smaller than the floor
(PEDIGREE_MIN_GROUP_SIZE_FLOOR), whatever the suite says."""

import pytest

from evaluators.models import RunStatus
from evaluators.services import suite_create
from pedigree_client.artefacts import sha256_file
from registry import services as registry_services
from registry.errors import InvalidInput
from tests.evaluators.conftest import SUITE_DEFAULTS

pytestmark = pytest.mark.django_db


def test_a_dataset_cannot_point_at_another_teams_file(
    biased_dataset, outsider, other_team, settings
):
    """globex registers a dataset version naming acme's private CSV, then defines a suite that
    would print every row id with its label: refused, naming none of the file's columns."""
    _, acme_file = biased_dataset
    record = registry_services.dataset_create(actor=outsider, name="globex/theirs", team=other_team)
    stolen = registry_services.dataset_version_create(
        actor=outsider,
        dataset=record,
        version="v1",
        sha256=sha256_file(acme_file.path),
        size_bytes=acme_file.path.stat().st_size,
        uri=acme_file.path.as_uri(),
    )
    with pytest.raises(InvalidInput) as error:
        suite_create(
            actor=outsider,
            name="steal",
            team=other_team,
            dataset_version=stolen,
            **{**SUITE_DEFAULTS, "sensitive_columns": ["ticket_id"]},
        )
    assert "dataset_version" in error.value.fields
    assert "Nothing you may read exists" in error.value.message
    assert "'region'" not in error.value.message and "label" not in error.value.message


def test_min_group_size_below_the_floor_is_refused(make_suite, settings):
    settings.PEDIGREE_MIN_GROUP_SIZE_FLOOR = 10
    with pytest.raises(InvalidInput) as error:
        make_suite(min_group_size=1)
    assert "PEDIGREE_MIN_GROUP_SIZE_FLOOR" in error.value.fields["min_group_size"][0]


@pytest.mark.slow
def test_the_floor_holds_for_suites_defined_before_it(models, make_suite, evaluate, settings):
    suite = make_suite(models=["acme/biased"])  # min_group_size 5
    settings.PEDIGREE_MIN_GROUP_SIZE_FLOOR = 21  # north has 20 rows, south 20, east 3

    run = evaluate(models["biased"], suite)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result.min_group_size == 21
    assert run.result.groups == {"region": {}}
    assert run.result.fairness["region"]["excluded_groups"] == 3
