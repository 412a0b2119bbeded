"""Writes of evaluation suites: defining one on a pinned dataset version, changing its limits.

What a suite measures (dataset, columns, metrics, batch size, seed, group size) is fixed when it
is defined, so its runs stay comparable; only limits, freshness and attachments change.
"""

import math
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from evaluators.engine.names import FAIRNESS_METRICS, KNOWN_METRICS, QUALITY_METRICS
from evaluators.models import EvaluationSuite, Task
from evaluators.sources import SourceError, locate_dataset
from registry.audit import audit_record
from registry.errors import (
    Conflict,
    InvalidInput,
    PermissionRefused,
    full_clean,
    invalid_from_django,
)
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Team
from registry.selectors import is_compliance, is_team_member, models_visible_to
from registry.services import compliance_recheck_after_commit, require_team_write
from registry.types import Actor

SUITE_UPDATABLE = {
    "description",
    "visibility",
    "min_quality",
    "max_fairness_gaps",
    "max_regression",
    "freshness_days",
    "models",
}


def _limits(name: str, value: Any, allowed: Sequence[str]) -> dict[str, float]:
    if not isinstance(value, dict):
        raise InvalidInput.for_field(name, f"{name} must map metric names to numbers.")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise InvalidInput.for_field(
            name,
            f"{name} names unknown metric(s) {', '.join(unknown)}; use: {', '.join(allowed)}.",
        )
    limits: dict[str, float] = {}
    for metric, limit in value.items():
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not (math.isfinite(limit) and 0 <= limit <= 1)
        ):
            raise InvalidInput.for_field(
                name, f"{name}.{metric} must be a number from 0 to 1 (metrics are fractions)."
            )
        limits[metric] = float(limit)
    return limits


def _metric_names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise InvalidInput.for_field("metrics", "metrics must be a list of metric names.")
    unknown = [m for m in value if m not in KNOWN_METRICS]
    if unknown:
        raise InvalidInput.for_field(
            "metrics",
            f"Unknown metric(s) {', '.join(unknown)}; known: {', '.join(KNOWN_METRICS)}.",
        )
    return list(dict.fromkeys(value))


def _check_limits_computed(suite: EvaluationSuite) -> None:
    """Every limit must be on a metric the suite computes, and fairness needs attributes."""
    computed = set(suite.metrics or KNOWN_METRICS)
    for name in ("min_quality", "max_fairness_gaps", "max_regression"):
        missing = sorted(set(getattr(suite, name)) - computed)
        if missing:
            raise InvalidInput.for_field(
                name,
                f"{name} limits {', '.join(missing)}, which the suite does not compute; add "
                "them to metrics (or leave metrics empty to compute all).",
            )
    if suite.max_fairness_gaps and not suite.sensitive_columns:
        raise InvalidInput.for_field(
            "max_fairness_gaps",
            "Fairness limits need sensitive_columns (e.g. gender, age_band, region) to compare.",
        )


def _check_columns(
    task: str,
    input_column: str,
    feature_columns: list[str],
    label_column: str,
    sensitive_columns: Sequence[str],
) -> None:
    """Text suites read one input column, tabular suites numeric feature columns; every column
    is named once."""
    if task == Task.TEXT_CLASSIFICATION and (not input_column or feature_columns):
        raise InvalidInput.for_field(
            "input_column",
            "A text-classification suite reads one text column: give input_column and no "
            "feature_columns.",
        )
    if task == Task.TABULAR_CLASSIFICATION and (input_column or not feature_columns):
        raise InvalidInput.for_field(
            "feature_columns",
            "A tabular-classification suite reads numeric columns: give feature_columns and "
            "no input_column.",
        )
    columns = [*([input_column] if input_column else feature_columns), label_column]
    columns += list(sensitive_columns)
    if not all(isinstance(c, str) and c.strip() for c in columns):
        raise InvalidInput.for_field("sensitive_columns", "Column names must be non-empty text.")
    if len(set(columns)) != len(columns):
        raise InvalidInput.for_field(
            "sensitive_columns",
            "The input or feature columns, the label column and each sensitive column must be "
            "different columns.",
        )


def _models_attachable(
    actor: Actor, models: Sequence[RegisteredModel | str]
) -> list[RegisteredModel]:
    """The models named, each visible to the actor, who must belong to its team (or be
    compliance staff): attaching a suite makes the model's gate read it."""
    names = [m.name if isinstance(m, RegisteredModel) else str(m) for m in models]
    found = {m.name: m for m in models_visible_to(actor).filter(name__in=names)}
    missing = [name for name in names if name not in found]
    if missing:
        raise InvalidInput.for_field(
            "models", f"No model(s) {', '.join(missing)} that you can see."
        )
    if not is_compliance(actor):
        foreign = [m.name for m in found.values() if not is_team_member(actor, m.team_id)]
        if foreign:
            raise PermissionRefused.for_field(
                "models",
                f"Only members of the owning team or compliance staff can attach or detach "
                f"suites for {', '.join(foreign)}.",
            )
    return [found[name] for name in dict.fromkeys(names)]


def _require_suite_write(actor: Actor, team: Team) -> None:
    """Suites are written by their team and by compliance staff, who set governance limits."""
    if not is_compliance(actor):
        require_team_write(actor, team)


def _full_clean(obj: EvaluationSuite) -> None:
    try:
        full_clean(obj, exclude=["models"])
    except DjangoValidationError as error:
        raise invalid_from_django(error) from None


def _suite_snapshot(suite: EvaluationSuite, models: Sequence[RegisteredModel]) -> dict[str, Any]:
    return {
        "name": suite.name,
        "team": suite.team.slug,
        "visibility": suite.visibility,
        "dataset_version": str(suite.dataset_version),
        "dataset_sha256": suite.dataset_sha256,
        "task": suite.task,
        "input_column": suite.input_column,
        "feature_columns": suite.feature_columns,
        "label_column": suite.label_column,
        "sensitive_columns": suite.sensitive_columns,
        "positive_label": suite.positive_label,
        "metrics": suite.metrics,
        "batch_size": suite.batch_size,
        "seed": suite.seed,
        "min_group_size": suite.min_group_size,
        "min_quality": suite.min_quality,
        "max_fairness_gaps": suite.max_fairness_gaps,
        "max_regression": suite.max_regression,
        "freshness_days": suite.freshness_days,
        "models": sorted(m.name for m in models),
    }


@transaction.atomic
def suite_create(
    *,
    actor: Actor,
    name: str,
    team: Team,
    dataset_version: DatasetVersion,
    label_column: str,
    input_column: str = "",
    feature_columns: Sequence[str] = (),
    task: str = Task.TEXT_CLASSIFICATION,
    sensitive_columns: Sequence[str] = (),
    positive_label: str = "",
    metrics: Sequence[str] = (),
    batch_size: int = 32,
    seed: int = 0,
    min_group_size: int = 30,
    min_quality: dict[str, float] | None = None,
    max_fairness_gaps: dict[str, float] | None = None,
    max_regression: dict[str, float] | None = None,
    freshness_days: int = 90,
    visibility: str = "team",
    description: str = "",
    models: Sequence[RegisteredModel | str] = (),
) -> EvaluationSuite:
    """Define a suite on a dataset version whose file lies inside the artefact roots.

    The dataset's SHA-256 is pinned on the suite; runs check the file still hashes to it.
    """
    _require_suite_write(actor, team)
    if EvaluationSuite.objects.filter(name=name).exists():
        raise Conflict.for_field("name", f"An evaluation suite named '{name}' already exists.")
    _check_columns(task, input_column, list(feature_columns), label_column, sensitive_columns)
    floor = settings.PEDIGREE_MIN_GROUP_SIZE_FLOOR
    if min_group_size < floor:
        raise InvalidInput.for_field(
            "min_group_size",
            f"min_group_size must be at least {floor} (PEDIGREE_MIN_GROUP_SIZE_FLOOR), so that "
            "no evaluation result describes a handful of rows.",
        )
    if dataset_version.reference:
        raise InvalidInput.for_field(
            "dataset_version",
            f"{dataset_version} is a Hub dataset an upstream model card names, recorded without "
            "files; register the evaluation data's files as a dataset version and name that.",
            code="dataset_reference",
        )
    try:
        locate_dataset(dataset_version)
    except SourceError as error:
        raise InvalidInput.for_field("dataset_version", str(error)) from None
    attached = _models_attachable(actor, models)
    suite = EvaluationSuite(
        name=name,
        team=team,
        visibility=visibility,
        description=description,
        dataset_version=dataset_version,
        dataset_sha256=dataset_version.sha256,
        task=task,
        input_column=input_column,
        feature_columns=list(feature_columns),
        label_column=label_column,
        sensitive_columns=list(sensitive_columns),
        positive_label=positive_label,
        metrics=_metric_names(list(metrics)),
        batch_size=batch_size,
        seed=seed,
        min_group_size=min_group_size,
        min_quality=_limits("min_quality", min_quality or {}, QUALITY_METRICS),
        max_fairness_gaps=_limits("max_fairness_gaps", max_fairness_gaps or {}, FAIRNESS_METRICS),
        max_regression=_limits("max_regression", max_regression or {}, QUALITY_METRICS),
        freshness_days=freshness_days,
        created_by=actor,
    )
    _full_clean(suite)
    _check_limits_computed(suite)
    try:
        with transaction.atomic():
            suite.save(force_insert=True)
    except IntegrityError as error:
        raise Conflict.for_field("name", f"Evaluation suite '{name}' already exists.") from error
    suite.models.set(attached)
    audit_record(
        actor=actor,
        action="evaluation_suite.create",
        obj=suite,
        after=_suite_snapshot(suite, attached),
    )
    _recheck_models(attached)
    return suite


@transaction.atomic
def suite_update(
    *, actor: Actor, suite: EvaluationSuite, changes: dict[str, Any]
) -> EvaluationSuite:
    """Change a suite's limits, freshness window, description, visibility or models.

    What it measures (dataset, columns, metrics, batch size, seed, group size) is fixed, so
    its runs stay comparable; define a new suite to measure something else.
    """
    unknown = sorted(set(changes) - SUITE_UPDATABLE)
    if unknown:
        raise InvalidInput(
            f"These fields cannot be changed: {', '.join(unknown)}; they define what the suite "
            "measures, so define a new suite instead. Changeable: "
            f"{', '.join(sorted(SUITE_UPDATABLE))}.",
            fields={name: ["This field cannot be changed."] for name in unknown},
        )
    suite = EvaluationSuite.objects.select_for_update().select_related("team").get(pk=suite.pk)
    before_models = list(suite.models.all())
    _require_suite_write(actor, suite.team)
    before = _suite_snapshot(suite, before_models)
    models = before_models
    if "models" in changes:
        wanted = {m.name if isinstance(m, RegisteredModel) else str(m) for m in changes["models"]}
        current = {m.name: m for m in before_models}
        moved = [m for m in before_models if m.name not in wanted]
        added = _models_attachable(actor, sorted(wanted - set(current)))
        _models_attachable(actor, moved)
        models = [m for m in before_models if m.name in wanted] + added
    for name, value in changes.items():
        if name in ("min_quality", "max_regression"):
            value = _limits(name, value, QUALITY_METRICS)
        elif name == "max_fairness_gaps":
            value = _limits(name, value, FAIRNESS_METRICS)
        if name != "models":
            setattr(suite, name, value)
    _full_clean(suite)
    _check_limits_computed(suite)
    suite.save()
    if "models" in changes:
        suite.models.set(models)
    audit_record(
        actor=actor,
        action="evaluation_suite.update",
        obj=suite,
        before=before,
        after=_suite_snapshot(suite, models),
    )
    _recheck_models([*models, *before_models])
    return suite


def _recheck_models(models: Sequence[RegisteredModel]) -> None:
    """A suite attached, detached or with new limits changes its models' versions' gates."""
    compliance_recheck_after_commit(
        ModelVersion.objects.filter(model__in=list(models))
        .exclude(stage="archived")
        .values_list("pk", flat=True)
    )
