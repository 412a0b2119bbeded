"""Reads of the catalogue, always restricted to what the user may see."""

from django.db.models import Q, QuerySet

from registry.models import (
    COMPLIANCE_GROUP,
    Dataset,
    DatasetVersion,
    ModelVersion,
    RegisteredModel,
    Team,
    Visibility,
)


def is_compliance(user) -> bool:
    """Compliance staff (and superusers) see and act on everything. Cached on the user object."""
    if not getattr(user, "is_authenticated", False):
        return False
    if not hasattr(user, "_pedigree_is_compliance"):
        user._pedigree_is_compliance = (
            user.is_superuser or user.groups.filter(name=COMPLIANCE_GROUP).exists()
        )
    return user._pedigree_is_compliance


def team_ids_of(user) -> frozenset[int]:
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    if not hasattr(user, "_pedigree_team_ids"):
        user._pedigree_team_ids = frozenset(user.teams.values_list("id", flat=True))
    return user._pedigree_team_ids


def is_team_member(user, team_id: int) -> bool:
    return team_id in team_ids_of(user)


def teams_visible_to(user) -> QuerySet[Team]:
    teams = Team.objects.all()
    if is_compliance(user):
        return teams
    return teams.filter(id__in=team_ids_of(user))


def _owned_or_shared(user, team_field: str, visibility_field: str) -> Q:
    return Q(**{f"{team_field}__in": team_ids_of(user)}) | Q(
        **{visibility_field: Visibility.INTERNAL}
    )


def models_visible_to(user) -> QuerySet[RegisteredModel]:
    models = RegisteredModel.objects.select_related("team", "created_by")
    if is_compliance(user):
        return models
    return models.filter(_owned_or_shared(user, "team_id", "visibility"))


def versions_visible_to(user) -> QuerySet[ModelVersion]:
    versions = ModelVersion.objects.select_related("model", "model__team", "registered_by")
    if is_compliance(user):
        return versions
    return versions.filter(_owned_or_shared(user, "model__team_id", "model__visibility"))


def datasets_visible_to(user) -> QuerySet[Dataset]:
    datasets = Dataset.objects.select_related("team", "created_by")
    if is_compliance(user):
        return datasets
    return datasets.filter(_owned_or_shared(user, "team_id", "visibility"))


def dataset_versions_visible_to(user) -> QuerySet[DatasetVersion]:
    versions = DatasetVersion.objects.select_related("dataset", "dataset__team", "registered_by")
    if is_compliance(user):
        return versions
    return versions.filter(_owned_or_shared(user, "dataset__team_id", "dataset__visibility"))


def version_by_ref(user, ref: str) -> ModelVersion | None:
    """Resolve `MODEL@VERSION` (or a numeric id) among the versions the user can see."""
    versions = versions_visible_to(user)
    if ref.isdigit():
        return versions.filter(pk=int(ref)).first()
    name, sep, label = ref.rpartition("@")
    if not sep or not name or not label:
        return None
    return versions.filter(model__name=name, version=label).first()
