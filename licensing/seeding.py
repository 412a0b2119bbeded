"""Seeding the licence tables from the catalogue and the default policy.

Both functions take the model classes, so data migrations can pass their historical models and
`licences_sync` the real ones. They write nothing to the audit log; their callers decide that.
"""

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from licensing.catalogue import hub_licence_ids, load_catalogue, resolve_hub_licence


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept_compliance_reading: list[str] = field(default_factory=list)
    not_in_catalogue: list[str] = field(default_factory=list)
    terms: int = 0
    hub_ids: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "kept_compliance_reading": sorted(self.kept_compliance_reading),
            "not_in_catalogue": sorted(self.not_in_catalogue),
            "terms": self.terms,
            "hub_ids": self.hub_ids,
        }


_CATALOGUE_FIELDS = ("name", "url", "curated", "deprecated", "aliases", "notes")


def seed_catalogue(licence_model, term_model, hub_model) -> SyncReport:
    """Create or refresh every catalogue licence, replace all terms, and map every Hub id."""
    now = timezone.now()
    report = SyncReport()
    existing = {licence.spdx_id: licence for licence in licence_model.objects.all()}
    to_create, to_update = [], []
    catalogue_ids = set()
    for entry in load_catalogue():
        catalogue_ids.add(entry.id)
        values = {
            "name": entry.name[:255],
            "url": entry.url,
            "curated": entry.curated,
            "deprecated": entry.deprecated,
            "aliases": list(entry.aliases),
            "notes": entry.notes,
        }
        row = existing.get(entry.id)
        if row is None:
            to_create.append(
                licence_model(
                    spdx_id=entry.id,
                    category=entry.category,
                    review_required=entry.review_required,
                    catalogue_category=entry.category,
                    catalogue_review_required=entry.review_required,
                    synced_at=now,
                    **values,
                )
            )
            report.created.append(entry.id)
            continue
        changed = any(getattr(row, name) != value for name, value in values.items()) or (
            row.catalogue_category != entry.category
            or row.catalogue_review_required != entry.review_required
        )
        for name, value in values.items():
            setattr(row, name, value)
        row.catalogue_category = entry.category
        row.catalogue_review_required = entry.review_required
        if row.compliance_override:
            if (row.category, row.review_required) != (entry.category, entry.review_required):
                report.kept_compliance_reading.append(entry.id)
        elif (row.category, row.review_required) != (entry.category, entry.review_required):
            row.category = entry.category
            row.review_required = entry.review_required
            changed = True
        row.synced_at = now
        to_update.append(row)
        if changed:
            report.updated.append(entry.id)
    licence_model.objects.bulk_create(to_create, batch_size=500)
    licence_model.objects.bulk_update(
        to_update,
        [
            *_CATALOGUE_FIELDS,
            "catalogue_category",
            "catalogue_review_required",
            "category",
            "review_required",
            "synced_at",
        ],
        batch_size=500,
    )
    # The SPDX list only grows (retired ids become deprecated); rows that left the catalogue
    # stay, because versions and rules may still name them.
    report.not_in_catalogue = sorted(set(existing) - catalogue_ids)

    pk_by_id = dict(licence_model.objects.values_list("spdx_id", "pk"))
    term_model.objects.all().delete()
    has_attestation = any(f.name == "attestation" for f in term_model._meta.get_fields())
    terms = [
        term_model(
            licence_id=pk_by_id[entry.id],
            position=position,
            type=term.type,
            clause=term.clause[:255],
            text=term.text,
            value=term.value,
            carries_through=list(term.carries_through),
            note=term.note,
            # Migration 0002's historical model predates the flag (0004 sets it there).
            **({"attestation": term.attestation} if has_attestation else {}),
        )
        for entry in load_catalogue()
        for position, term in enumerate(entry.terms)
    ]
    term_model.objects.bulk_create(terms, batch_size=500)
    report.terms = len(terms)

    hub_ids = hub_licence_ids()
    for hub_id in hub_ids:
        resolved = resolve_hub_licence(hub_id)
        hub_model.objects.update_or_create(
            hub_id=hub_id,
            defaults={
                "licence_id": pk_by_id[resolved.expression],
                "review_required": resolved.review_required,
                "reason": resolved.reason if resolved.review_required else "",
            },
        )
    hub_model.objects.exclude(hub_id__in=hub_ids).delete()
    report.hub_ids = len(hub_ids)
    return report


def _rule(
    name: str,
    condition: str,
    severity: str,
    message: str,
    how_to_fix: str,
    **context: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "condition": condition,
        "severity": severity,
        "message": message,
        "how_to_fix": how_to_fix,
        **context,
    }


# Exported for the migration that adds it to policies created before it existed.
UPSTREAM_TRAINING_DATA_RULE = _rule(
    "upstream-training-data",
    "upstream_training_data",
    "hint",
    "{source} is training data that an upstream model's card declares ({licence_name}); it "
    "reaches this version: {path}.",
    "Read the card of {source}. Where its terms matter for this use, ask compliance to conclude "
    "its licence, or to raise this rule to a warning or an error in the licence policy (a rule "
    "may name one term type, e.g. non_commercial, and the uses or stages it applies in).",
)

DEFAULT_POLICY_NAME = "default"
DEFAULT_RULES: list[dict[str, Any]] = [
    _rule(
        "non-commercial-use",
        "term_type",
        "error",
        "{licence} forbids commercial use ({clause}), and the version is meant for commercial use.",
        "Retrain without {source}, obtain a commercial licence from its licensor, or use the "
        "version for research or internal purposes only.",
        term_type="non_commercial",
        uses=["commercial"],
    ),
    _rule(
        "non-commercial-conflict",
        "conflict",
        "warning",
        "The version is declared {output_licence}, but inherits the non-commercial term of "
        "{licence} from {source} ({clause}).",
        "Declare a licence that passes the non-commercial restriction on (e.g. "
        "'{output_licence} AND {licence}'), or retrain without {source}.",
        term_type="non_commercial",
    ),
    _rule(
        "share-alike-shipped",
        "conflict",
        "error",
        "{source} is under {licence}, whose share-alike term ({clause}) follows into these "
        "weights, but they are declared {output_licence}, which is not share-alike.",
        "Release the weights under {licence} (or a licence it names as compatible), or retrain "
        "without {source}.",
        term_type="share_alike",
        distributions=["shipped_weights"],
    ),
    _rule(
        "share-alike-hosted",
        "conflict",
        "warning",
        "{source} is under {licence}, whose share-alike term ({clause}) follows into this "
        "version, but it is declared {output_licence}, which is not share-alike.",
        "Before shipping the weights, license them under {licence}; hosting them is allowed.",
        term_type="share_alike",
        distributions=["hosted"],
    ),
    _rule(
        "naming-prefix",
        "term_type",
        "error",
        '{licence} requires a model built from it to have a name beginning with "{value}" '
        '({clause}); "{model}" does not.',
        'Rename the model so that its name starts with "{value}", or neither distribute it nor '
        "make it available to others.",
        term_type="naming_prefix",
        uses=["commercial", "research"],
    ),
    _rule(
        "unknown-licence-production",
        "unknown_licence",
        "error",
        "{source} is under {licence}, which is unknown, and compliance has not concluded its "
        "licence.",
        "Find the licence text of {source} and ask compliance to record the concluded licence.",
        stages=["production"],
    ),
    _rule(
        "unknown-licence",
        "unknown_licence",
        "warning",
        "{source} is under {licence}, which is unknown, and compliance has not concluded its "
        "licence.",
        "Find the licence text of {source} and ask compliance to record the concluded licence "
        "before production.",
        stages=["development", "staging"],
    ),
    _rule(
        "unreviewed-licence-production",
        "unreviewed_licence",
        "error",
        "{licence} of {source} needs review by compliance and no licence has been concluded.",
        "Ask compliance to read {licence} and record the concluded licence of {source}.",
        stages=["production"],
    ),
    _rule(
        "unreviewed-licence",
        "unreviewed_licence",
        "warning",
        "{licence} of {source} needs review by compliance and no licence has been concluded.",
        "Ask compliance to read {licence} and record the concluded licence of {source} before "
        "production.",
        stages=["development", "staging"],
    ),
    _rule(
        "missing-licence",
        "missing_licence",
        "error",
        "{source} declares no licence: missing licence evidence.",
        "Declare the licence of {source} as an SPDX expression (e.g. 'Apache-2.0'); for an "
        "upstream model whose card names none, ask compliance to conclude its licence from the "
        "publisher's terms; for an unresolved upstream reference, import it.",
    ),
    _rule(
        "use-restrictions-passdown-production",
        "conflict",
        "error",
        "{source} is under {licence}, whose use restrictions ({clause}) must be passed on to "
        "everyone who receives this version, but it is declared {output_licence}, which does "
        "not carry them forward.",
        "Declare the version under a licence that carries the restrictions (e.g. "
        "'{output_licence} AND {licence}'), or ask compliance to lower this rule to a warning "
        "in the licence policy.",
        term_type="use_restrictions_passdown",
        stages=["production"],
    ),
    _rule(
        "use-restrictions-passdown",
        "conflict",
        "warning",
        "{source} is under {licence}, whose use restrictions ({clause}) must be passed on to "
        "everyone who receives this version, but it is declared {output_licence}, which does "
        "not carry them forward.",
        "Before production, declare the version under a licence that carries the restrictions "
        "(e.g. '{output_licence} AND {licence}').",
        term_type="use_restrictions_passdown",
        stages=["development", "staging"],
    ),
    _rule(
        "use-restrictions-notice",
        "term_type",
        "hint",
        "{licence} ({clause}) requires its use restrictions to be passed on to everyone who "
        "receives this version.",
        "Include the use restrictions of {licence} in the licence you give users and in the "
        "model card.",
        term_type="use_restrictions_passdown",
    ),
    _rule(
        "user-threshold",
        "term_type",
        "hint",
        "{licence} ({clause}) requires a separate licence above {value} monthly active users.",
        "Check the user count of the products that will use the version.",
        term_type="user_threshold",
        stages=["development", "staging"],
    ),
    _rule(
        "user-threshold-attestation",
        "term_type",
        "error",
        "{licence} ({clause}) requires a separate licence above {value} monthly active users, "
        "a fact only the releasing team knows; production needs the attestation "
        "'{attestation}'.",
        "Confirm with the releasing team that the products using the version stay below "
        "{value} monthly active users, then record the production approval with the "
        "attestation '{attestation}' (API field 'attestations', or the admin approval form).",
        term_type="user_threshold",
        stages=["production"],
    ),
    _rule(
        "no-output-training",
        "term_type",
        "warning",
        "{licence} ({clause}) forbids using the outputs of this version to improve other "
        "large language models.",
        "Do not use this version to generate training data for other models.",
        term_type="no_output_training",
    ),
    _rule(
        "no-derivatives",
        "term_type",
        "error",
        "{source} is under {licence}, which forbids sharing adaptations ({clause}); this version "
        "is one and would be shared.",
        "Retrain without {source}, or keep the version for internal use only.",
        term_type="no_derivatives",
        scope="inherited",
        uses=["commercial", "research"],
    ),
    _rule(
        "permissive-notices",
        "category",
        "hint",
        "{licence} is permissive; its notices must travel with the weights.",
        "Ship the licence text and notices of {licence} with the weights.",
        category="permissive",
    ),
    UPSTREAM_TRAINING_DATA_RULE,
    _rule(
        "catch-all",
        "catch_all",
        "warning",
        "No licence rule covers {licence} ({category}) of {source}.",
        "Ask compliance to add a rule for {licence} to the licence policy.",
    ),
]


def default_rule_rows() -> list[dict[str, Any]]:
    """The default rules with every context field present, in order."""
    rows = []
    for position, rule in enumerate(DEFAULT_RULES):
        rows.append(
            {
                "position": (position + 1) * 10,
                "enabled": True,
                "category": "",
                "licence": None,
                "term_type": "",
                "scope": "any",
                "stages": [],
                "uses": [],
                "distributions": [],
                **rule,
            }
        )
    return rows


def seed_default_policy(policy_model, rule_model, revision_model) -> bool:
    """Create the default policy with its rules when no licence policy exists at all."""
    if policy_model.objects.exists():
        return False
    policy = policy_model.objects.create(
        name=DEFAULT_POLICY_NAME,
        description="Pedigree's default licence policy; compliance staff edit it in the admin.",
        active=True,
        revision=1,
    )
    # A migration's historical model knows only the conditions of its time; later migrations
    # add the rules it cannot hold (`default_rule_add`).
    allowed = {value for value, _ in rule_model._meta.get_field("condition").choices}
    rows = [row for row in default_rule_rows() if row["condition"] in allowed]
    rule_model.objects.bulk_create(
        [
            rule_model(policy=policy, **{k: v for k, v in row.items() if k != "licence"})
            for row in rows
        ]
    )
    revision_model.objects.create(
        policy=policy, revision=1, rules=rows, change="default policy created"
    )
    return True


def default_rule_add(policy_model, rule_model, revision_model, rule: dict[str, Any]) -> bool:
    """Add a rule of the default rules to the default policy if it has none of that name,
    before its catch-all, as a new revision; for policies created before the rule existed."""
    policy = policy_model.objects.filter(name=DEFAULT_POLICY_NAME).first()
    if policy is None or rule_model.objects.filter(policy=policy, name=rule["name"]).exists():
        return False
    rules = list(rule_model.objects.filter(policy=policy).order_by("position", "id"))
    catch_all = next((row for row in rules if row.condition == "catch_all"), None)
    position = (
        catch_all.position - 5
        if catch_all is not None
        else max((row.position for row in rules), default=0) + 10
    )
    row = {
        "position": position,
        "enabled": True,
        "category": "",
        "term_type": "",
        "scope": "any",
        "stages": [],
        "uses": [],
        "distributions": [],
        **rule,
    }
    rule_model.objects.create(policy=policy, **{k: v for k, v in row.items() if k != "licence"})
    policy.revision += 1
    policy.save(update_fields=["revision"])
    snapshot = [
        {
            "name": item.name,
            "position": item.position,
            "enabled": item.enabled,
            "condition": item.condition,
            "category": item.category,
            "licence": item.licence.spdx_id if item.licence_id else None,
            "term_type": item.term_type,
            "scope": item.scope,
            "stages": list(item.stages),
            "uses": list(item.uses),
            "distributions": list(item.distributions),
            "severity": item.severity,
            "message": item.message,
            "how_to_fix": item.how_to_fix,
        }
        for item in rule_model.objects.filter(policy=policy)
        .select_related("licence")
        .order_by("position", "id")
    ]
    revision_model.objects.create(
        policy=policy,
        revision=policy.revision,
        rules=snapshot,
        change=f"rule {rule['name']} added ({rule['severity']}) by an upgrade",
    )
    return True
