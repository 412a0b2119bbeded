"""Reads of the catalogue, always restricted to what the user may see."""

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from registry.memo import remembered
from registry.models import (
    COMPLIANCE_GROUP,
    Approval,
    ArtefactInspection,
    ArtefactUpload,
    ComplianceState,
    ComplianceStatus,
    Dataset,
    DatasetVersion,
    EvidenceProposal,
    GateDecision,
    ModelVersion,
    ProposalStatus,
    RegisteredModel,
    Stage,
    Team,
    Visibility,
)
from registry.plugins import AnswerRedaction, plugins
from registry.types import Actor, Reader

# What a request asks again and again is cached on its user object, under these names
# (through getattr/setattr, which reach the user behind a request's lazy `user`).
_COMPLIANCE_CACHE = "_pedigree_is_compliance"
_TEAM_IDS_CACHE = "_pedigree_team_ids"


def is_compliance(user: Reader) -> bool:
    """Compliance staff (and superusers) see and act on everything. Cached on the user object."""
    if not user.is_authenticated:
        return False
    if not hasattr(user, _COMPLIANCE_CACHE):
        in_group = user.groups.filter(name=COMPLIANCE_GROUP).exists()
        remember_compliance(user, in_compliance_group=in_group)
    answer: bool = getattr(user, _COMPLIANCE_CACHE)
    return answer


def compliance_group_member(user_field: str = "user_id") -> Exists:
    """For annotating a query whose rows have a `user_id` (or `user_field`): is that user
    compliance staff?"""
    return Exists(Group.objects.filter(name=COMPLIANCE_GROUP, user=OuterRef(user_field)))


@lru_cache(maxsize=256)
def standing_of(user_field: str, team_id: int) -> dict[str, Any]:
    """Annotations saying, as of now, whether the user in `user_field` still holds the
    compliance role (`holds_role`) and whether they have joined team `team_id` (`in_team`):
    approvals and waivers count only while their author may still give them. Built once per
    field and team in each process (a gate asks four times): the expressions hold no data, and
    a query copies what it annotates with, so callers only read the dict."""
    user = user_field.removesuffix("_id")
    return {
        "holds_role": ExpressionWrapper(
            Q(**{f"{user}__is_active": True})
            & (Q(**{f"{user}__is_superuser": True}) | Q(compliance_group_member(user_field))),
            output_field=BooleanField(),
        ),
        "in_team": Exists(
            Team.members.through.objects.filter(team_id=team_id, user_id=OuterRef(user_field))
        ),
    }


def standing_problem(username: str, row: Any) -> str | None:
    """Why an approval or waiver by `username` no longer counts, or None; `row` carries the
    annotations of `standing_of`."""
    if not row.holds_role:
        return f"{username} is no longer compliance staff"
    if row.in_team:
        return f"{username} has since joined the owning team"
    return None


def remember_compliance(user: Actor, *, in_compliance_group: bool) -> None:
    """Cache what `is_compliance` answers, when a query already read the group membership."""
    setattr(user, _COMPLIANCE_CACHE, user.is_superuser or in_compliance_group)


def team_ids_of(user: Reader) -> frozenset[int]:
    if not user.is_authenticated:
        return frozenset()
    if not hasattr(user, _TEAM_IDS_CACHE):
        setattr(user, _TEAM_IDS_CACHE, frozenset(user.teams.values_list("id", flat=True)))
    team_ids: frozenset[int] = getattr(user, _TEAM_IDS_CACHE)
    return team_ids


def team_named(user: Reader, slug: str) -> Team | None:
    """The team `slug` if the user can see it. Reads all the user's teams at once (a handful)
    and remembers their ids for `team_ids_of`, so writing into the team then asks nothing more;
    compliance staff, who see every team, may need one more query for a team not theirs."""
    if not user.is_authenticated:
        return None
    mine = list(Team.objects.filter(id__in=_my_team_ids(user)))
    setattr(user, _TEAM_IDS_CACHE, frozenset(team.pk for team in mine))
    found = next((team for team in mine if team.slug == slug), None)
    if found is None and is_compliance(user):
        found = Team.objects.filter(slug=slug).first()
    return found


def is_team_member(user: Reader, team_id: int) -> bool:
    return team_id in team_ids_of(user)


def _team_ids_of_id(user_id: int | None) -> QuerySet[Model, int]:
    """The team ids of the user `user_id` (None: nobody) as a subquery: filtering by it costs no
    query of its own."""
    memberships = Team.members.through.objects
    if user_id is None:
        return memberships.none().values_list("team_id", flat=True)
    return memberships.filter(user_id=user_id).values_list("team_id", flat=True)


def _my_team_ids(user: Reader) -> QuerySet[Model, int]:
    return _team_ids_of_id(user.pk if user.is_authenticated else None)


def teams_visible_to(user: Reader) -> QuerySet[Team]:
    teams = Team.objects.all()
    if is_compliance(user):
        return teams
    return teams.filter(id__in=_my_team_ids(user))


def owned_or_shared(user: Reader, team_field: str, visibility_field: str) -> Q:
    """Rows of the user's teams, or shared with every team (`internal`)."""
    return _owned_or_shared_by(_my_team_ids(user), team_field, visibility_field)


def _owned_or_shared_by(teams: QuerySet[Model, int], team_field: str, visibility_field: str) -> Q:
    return Q(**{f"{team_field}__in": teams}) | Q(**{visibility_field: Visibility.INTERNAL})


def _visible(
    model: type[Model], related: tuple[str, ...], team: str, visibility: str
) -> Callable[[Reader], QuerySet[Any]]:
    """A selector of `model`'s rows the user may see: every row for compliance staff, else their
    teams' rows and shared ones. Built once per user (and role) in each process, and cloned for
    each call: resolving the joins of the filter cost as much as running the query. The SQL holds
    the user's id only, never their teams, so a membership change applies at once."""

    @lru_cache(maxsize=1024)
    def base(user_id: int | None, compliance: bool) -> QuerySet[Any]:
        rows = model._default_manager.select_related(*related)
        if compliance:
            return rows
        return rows.filter(_owned_or_shared_by(_team_ids_of_id(user_id), team, visibility))

    def visible_to(user: Reader) -> QuerySet[Any]:
        return base(user.pk if user.is_authenticated else None, is_compliance(user)).all()

    return visible_to


models_visible_to: Callable[[Reader], QuerySet[RegisteredModel]] = _visible(
    RegisteredModel, ("team", "created_by"), "team_id", "visibility"
)
versions_visible_to: Callable[[Reader], QuerySet[ModelVersion]] = _visible(
    ModelVersion, ("model", "model__team", "registered_by"), "model__team_id", "model__visibility"
)
datasets_visible_to: Callable[[Reader], QuerySet[Dataset]] = _visible(
    Dataset, ("team", "created_by"), "team_id", "visibility"
)
dataset_versions_visible_to: Callable[[Reader], QuerySet[DatasetVersion]] = _visible(
    DatasetVersion,
    ("dataset", "dataset__team", "registered_by"),
    "dataset__team_id",
    "dataset__visibility",
)


def proposals_visible_to(user: Reader) -> QuerySet[EvidenceProposal]:
    """Evidence-change proposals: compliance staff see every one, others those on their own
    teams' versions and dataset versions (a shared version's proposals stay its team's)."""
    proposals = EvidenceProposal.objects.select_related(
        "version__model__team",
        "dataset_version__dataset__team",
        "proposed_by",
        "concluded_by",
    )
    if is_compliance(user):
        return proposals
    mine = _my_team_ids(user)
    return proposals.filter(
        Q(version__model__team_id__in=mine) | Q(dataset_version__dataset__team_id__in=mine)
    )


def pending_proposals(user: Reader) -> QuerySet[EvidenceProposal]:
    """What awaits a compliance conclusion, oldest first."""
    return (
        proposals_visible_to(user)
        .filter(status=ProposalStatus.PENDING)
        .order_by("proposed_at", "pk")
    )


# Ids are ASCII digits that fit a 64-bit integer; 18 digits always do.
_ID = re.compile(r"[0-9]{1,18}")


def as_id(text: str) -> int | None:
    """`text` as a row id, or None when it is not one (so no lookup can overflow)."""
    return int(text) if _ID.fullmatch(text) else None


def redacted_for(reader: Reader, version: ModelVersion, data: Any) -> Any:
    """`data`, an answer about `version`, as `reader` may see it: each app hides what its
    words name that the reader cannot see (`AnswerRedaction`)."""
    for redaction in plugins.contributions(AnswerRedaction):
        data = redaction.redact(reader, version, data)
    return data


def version_in(versions: QuerySet[ModelVersion], ref: str) -> ModelVersion | None:
    """The version named by `ref`, a numeric id or `MODEL@VERSION`, among `versions`."""
    if ref.isdigit():
        pk = as_id(ref)
        return versions.filter(pk=pk).first() if pk is not None else None
    name, sep, label = ref.rpartition("@")
    if not sep or not name or not label:
        return None
    return versions.filter(model__name=name, version=label).first()


def version_by_ref(user: Reader, ref: str) -> ModelVersion | None:
    """Resolve `MODEL@VERSION` (or a numeric id) among the versions the user can see."""
    return version_in(versions_visible_to(user), ref)


def uploads_of(user: Reader) -> QuerySet[ArtefactUpload]:
    """An upload belongs to its uploader alone until it becomes a version."""
    return ArtefactUpload.objects.filter(created_by_id=user.pk).select_related(
        "created_by", "consumed_by", "consumed_by__model"
    )


def inspections_of(user: Reader) -> QuerySet[ArtefactInspection]:
    """An inspection is read by whoever asked for it, and by compliance staff."""
    inspections = ArtefactInspection.objects.all()
    if not is_compliance(user):
        inspections = inspections.filter(requested_by_id=user.pk)
    return inspections.select_related("requested_by")


# Each team's files lie under `<artefact root>/teams/<team slug>/`.
TEAM_AREAS_FOLDER = "teams"


def team_areas(team_slugs: list[str]) -> list[Path]:
    """The folders under every artefact root that hold these teams' server-side files."""
    return [
        Path(root) / TEAM_AREAS_FOLDER / slug
        for root in settings.ARTEFACT_ROOTS
        for slug in team_slugs
    ]


def artefact_areas_of(user: Reader) -> list[Path] | None:
    """The folders under the artefact roots whose files `user` may name by path: their teams'
    areas (uploads are named by id, which `uploads_of` confines to their uploader). None means
    anywhere in the roots: compliance staff inspect everything."""
    if is_compliance(user):
        return None
    return team_areas(
        list(Team.objects.filter(id__in=_my_team_ids(user)).values_list("slug", flat=True))
    )


def upload_expiry_cutoff(now: datetime | None = None) -> datetime:
    """Uploads created before this that no version holds have expired
    (`PEDIGREE_UPLOAD_TTL_HOURS`): the sweep deletes them and nobody reuses them."""
    return (now or timezone.now()) - timedelta(hours=settings.PEDIGREE_UPLOAD_TTL_HOURS)


def reusable_upload(user: Actor, digest: str) -> ArtefactUpload | None:
    """The user's newest unexpired upload of exactly these files that no version holds yet."""
    return (
        uploads_of(user)
        .filter(digest=digest, consumed_by__isnull=True, created_at__gte=upload_expiry_cutoff())
        .first()
    )


def hub_datasets_of(user: Reader, version: ModelVersion) -> QuerySet[Dataset]:
    """The dataset records of the Hub datasets an imported version's model card names
    (`version.hub_card["datasets"]` holds their Hub ids; `Dataset.hub_id` matches them)."""
    return datasets_visible_to(user).filter(hub_id__in=version.hub_card.get("datasets") or [])


def hub_training_data_of(user: Reader, version: ModelVersion) -> list[dict[str, Any]]:
    """The reference dataset version of each Hub dataset an imported card names (those the user
    can see), in the card's order, with where its licence came from; one query."""
    hub_ids = version.hub_card.get("datasets") or []
    read = version.hub_card.get("dataset_licences") or {}
    found = {
        row.dataset.hub_id: row
        for row in dataset_versions_visible_to(user)
        .filter(reference=True, dataset__hub_id__in=hub_ids)
        .select_related("dataset")
    }
    return [
        {
            "hub_id": hub_id,
            "dataset_version": str(found[hub_id]),
            "licence_declared": found[hub_id].licence_declared,
            "licence_concluded": found[hub_id].licence_concluded,
            "licence_source": (read.get(hub_id) or {}).get("reason"),
        }
        for hub_id in hub_ids
        if hub_id in found
    ]


def hub_bases_of(user: Reader, version: ModelVersion) -> list[dict[str, Any]]:
    """Each base model an imported version's card names, with the newest registered version of
    it the user can see (None when it is not registered), in one query."""
    bases = version.hub_card.get("base_models") or []
    if not bases:
        return []
    newest: dict[str, ModelVersion] = {}
    candidates = versions_visible_to(user).filter(
        Q(hub_repo_id__in=bases) | Q(model__name__in=bases)
    )
    for candidate in candidates.order_by("-registered_at", "-pk"):
        name = candidate.hub_repo_id if candidate.hub_repo_id in bases else candidate.model.name
        newest.setdefault(name, candidate)
    return [
        {
            "repo_id": base,
            "registered": str(newest[base]) if base in newest else None,
            "unresolved": newest[base].unresolved if base in newest else False,
        }
        for base in bases
    ]


def valid_approvals(
    version: ModelVersion, stage: str, *, now: datetime | None = None
) -> list[Approval]:
    """Unexpired approvals and rejections of exactly these weights for `stage`, each annotated
    with its approver's standing (`standing_of`). Read once per gate evaluation (`read_memo`):
    the approvals check and the licence check's attestations both ask for production's."""

    def read() -> list[Approval]:
        return list(
            Approval.objects.filter(
                version=version,
                stage=stage,
                artefact_digest=version.artefact_digest,
                expires_at__gt=now or timezone.now(),
            )
            .select_related("approver")
            .only(
                "decision",
                "comment",
                "created_at",
                "expires_at",
                "evidence",
                "attestations",
                "approver__username",
            )
            .annotate(**standing_of("approver_id", version.model.team_id))
        )

    if now is not None:
        return read()
    return remembered(("registry.approvals", version.pk, version.artefact_digest, stage), read)


# How many rows each list of the compliance overview shows at most.
OVERVIEW_LIMIT = 200


def compliance_of(version: ModelVersion) -> ComplianceStatus | None:
    """The version's standing as the last recheck stored it, or None if never assessed."""
    return ComplianceStatus.objects.filter(version=version).first()


def compliance_stale_ids(*, limit: int = OVERVIEW_LIMIT) -> list[int]:
    """Versions (not archived) whose compliance was never computed or is older than the
    recheck period, oldest first."""
    cutoff = timezone.now() - timedelta(seconds=settings.PEDIGREE_COMPLIANCE_RECHECK_SECONDS)
    return list(
        ModelVersion.objects.exclude(stage=Stage.ARCHIVED)
        .filter(Q(compliance__isnull=True) | Q(compliance__computed_at__lt=cutoff))
        .order_by("compliance__computed_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def _overview_row(status: ComplianceStatus) -> dict[str, Any]:
    return {
        "version": status.version,
        "state": status.state,
        "state_label": status.get_state_display(),
        "stage": status.stage,
        "target": status.target_stage,
        "failing": status.failing,
        "why": [
            f"{row['stage']} · {row['check']}: {reason}"
            for row in status.failing
            for reason in row["reasons"] or ["failed"]
        ],
        "what_to_do": status.action,
        "gated": status.gated,
        "out_of_compliance_since": status.out_of_compliance_since,
        "computed_at": status.computed_at,
    }


def compliance_overview(*, limit: int = OVERVIEW_LIMIT) -> dict[str, Any]:
    """The compliance dashboard's truth, from every version's current compliance status
    (`registry.services.compliance`): what is out of compliance, held, blocked (fails its next
    gate now), awaiting approval (oldest first, waiting since it was first put to that gate),
    never gated, each row with why and what to do. Four queries whatever the registry size."""
    statuses = ComplianceStatus.objects.exclude(stage=Stage.ARCHIVED).select_related(
        "version__model"
    )
    state = ComplianceState

    def rows(queryset: QuerySet[ComplianceStatus]) -> list[dict[str, Any]]:
        return [_overview_row(status) for status in queryset.order_by("-computed_at")[:limit]]

    flagged = statuses.filter(
        Q(state__in=[state.OUT_OF_COMPLIANCE, state.HELD])
        | Q(target_passed=False)
        | Q(gated=False, stage=Stage.DEVELOPMENT)
    )
    every = rows(flagged)
    first_asked = GateDecision.objects.filter(
        version_id=OuterRef("version_id"), to_stage=OuterRef("target_stage")
    ).order_by("decided_at")
    awaiting = (
        statuses.filter(state=state.AWAITING_APPROVAL)
        .annotate(
            waiting_since=Coalesce(
                Subquery(first_asked.values("decided_at")[:1]), F("version__registered_at")
            )
        )
        .order_by("waiting_since", "pk")[:limit]
    )
    return {
        "out_of_compliance": [r for r in every if r["state"] == state.OUT_OF_COMPLIANCE],
        "held": [r for r in every if r["state"] == state.HELD],
        # Blocked: refused at a gate it was put to; a version nobody gated is "never gated".
        "blocked": [
            r
            for r in every
            if r["state"] in (state.BLOCKED, state.AWAITING_APPROVAL) and r["gated"]
        ],
        "awaiting_approval": [
            {**_overview_row(status), "waiting_since": status.waiting_since} for status in awaiting
        ],
        "never_gated": [r for r in every if r["stage"] == Stage.DEVELOPMENT and not r["gated"]],
        "unassessed": ModelVersion.objects.exclude(stage=Stage.ARCHIVED)
        .filter(compliance__isnull=True)
        .count(),
    }
