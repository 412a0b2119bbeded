"""Licences, their cited terms, the Hub licence mapping, the licence policy and its waivers.

`Licence`, `LicenceTerm` and `HubLicenceMapping` mirror the curated catalogue
(`licensing/catalogue/ml_licences.yaml` merged with the SPDX list) and are re-seeded by
`manage.py licences_sync`. Compliance staff may correct a licence's category or review flag in
the admin; the sync then keeps their reading (`compliance_override`) and only refreshes the
catalogue's own (`catalogue_category`, `catalogue_review_required`).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from licensing.catalogue import CATEGORIES, TERM_TYPES
from registry.gates import DISTRIBUTIONS, USES
from registry.models import SHA256_PATTERN, ModelVersion, choices_check, sha256_validator

# Plain strings (not the catalogue's enums), so migrations do not depend on the loader.
CATEGORY_VALUES = [str(category) for category in CATEGORIES]
TERM_TYPE_VALUES = [str(term_type) for term_type in TERM_TYPES]
CATEGORY_CHOICES = [(category, category.replace("_", " ")) for category in CATEGORY_VALUES]
TERM_TYPE_CHOICES = [(term_type, term_type.replace("_", " ")) for term_type in TERM_TYPE_VALUES]


class Licence(models.Model):
    spdx_id = models.CharField("SPDX id", max_length=128, unique=True)
    name = models.CharField(max_length=255)
    category = models.CharField(max_length=16, choices=CATEGORY_CHOICES)
    review_required = models.BooleanField(
        help_text="A person must read the licence before the catalogue's reading counts."
    )
    url = models.URLField(max_length=512)
    curated = models.BooleanField(
        default=False, help_text="Terms recorded by hand; other SPDX licences carry none."
    )
    deprecated = models.BooleanField(default=False)
    aliases = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)
    catalogue_category = models.CharField(max_length=16, choices=CATEGORY_CHOICES)
    catalogue_review_required = models.BooleanField()
    compliance_override = models.BooleanField(
        default=False,
        help_text="Category or review flag set by compliance; licences_sync keeps them.",
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ["spdx_id"]
        constraints = [
            models.CheckConstraint(condition=~Q(spdx_id=""), name="licence_spdx_id_not_empty"),
            models.CheckConstraint(
                condition=Q(category__in=CATEGORY_VALUES), name="licence_category_valid"
            ),
            models.CheckConstraint(
                condition=Q(catalogue_category__in=CATEGORY_VALUES),
                name="licence_catalogue_category_valid",
            ),
        ]
        indexes = [models.Index(fields=["category"]), models.Index(fields=["review_required"])]

    def __str__(self) -> str:
        return self.spdx_id


class LicenceTerm(models.Model):
    """One obligation of a licence, citing its clause, and the relations it follows."""

    licence = models.ForeignKey(Licence, on_delete=models.CASCADE, related_name="terms")
    position = models.PositiveSmallIntegerField()
    type = models.CharField(max_length=32, choices=TERM_TYPE_CHOICES)
    clause = models.CharField(max_length=255)
    text = models.TextField()
    value = models.JSONField(null=True, blank=True)
    carries_through = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    # A fact only the releasing team knows (a user threshold): production needs it attested.
    attestation = models.BooleanField(default=False)

    class Meta:
        ordering = ["licence_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["licence", "position"], name="licence_term_position"),
            models.CheckConstraint(
                condition=Q(type__in=TERM_TYPE_VALUES), name="licence_term_type_valid"
            ),
            models.CheckConstraint(condition=~Q(clause=""), name="licence_term_clause_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.licence_id}: {self.type} ({self.clause})"


class HubLicenceMapping(models.Model):
    """What a Hugging Face Hub `license:` id means; ambiguous ids are flagged for review."""

    hub_id = models.CharField("Hub licence id", max_length=64, unique=True)
    licence = models.ForeignKey(Licence, on_delete=models.PROTECT, related_name="hub_ids")
    review_required = models.BooleanField(default=False)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["hub_id"]
        verbose_name = "Hub licence mapping"
        constraints = [
            models.CheckConstraint(
                condition=Q(review_required=False) | ~Q(reason=""),
                name="hub_mapping_review_has_reason",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hub_id} → {self.licence_id}"


class LicencePolicy(models.Model):
    """The rule set the `licence` check applies. `revision` grows with every rule change and is
    recorded in each evaluation; `LicencePolicyRevision` keeps every revision's rules."""

    name = models.CharField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    revision = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "licence policies"
        constraints = [
            models.UniqueConstraint(
                fields=["active"],
                condition=Q(active=True),
                name="one_active_licence_policy",
                violation_error_message="Only one licence policy can be active.",
            ),
            models.CheckConstraint(condition=Q(revision__gte=1), name="licence_policy_revision"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (revision {self.revision})"


class LicencePolicyRevision(models.Model):
    """The rules of a policy as they were at one revision, with who changed what."""

    policy = models.ForeignKey(LicencePolicy, on_delete=models.PROTECT, related_name="revisions")
    revision = models.PositiveIntegerField()
    rules = models.JSONField(default=list)
    change = models.CharField(max_length=255)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy_id", "-revision"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "revision"], name="licence_policy_revision_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.policy.name} revision {self.revision}"


class Condition(models.TextChoices):
    CATEGORY = "category", "Licence category"
    LICENCE = "licence", "Specific licence"
    TERM_TYPE = "term_type", "Term type applies"
    CONFLICT = "conflict", "Declared licence conflicts with an inherited term"
    UNKNOWN_LICENCE = "unknown_licence", "Unknown licence, not concluded"
    UNREVIEWED_LICENCE = "unreviewed_licence", "Licence needing review, not concluded"
    MISSING_LICENCE = "missing_licence", "No licence declared"
    MISSING_EVIDENCE = "missing_evidence", "Licence without evidence"
    # The only condition that speaks about the datasets an upstream card declares as training
    # data (no other rule fires on them): their terms, and a licence missing or unknown.
    UPSTREAM_TRAINING_DATA = (
        "upstream_training_data",
        "Terms of an upstream model's declared training data",
    )
    CATCH_ALL = "catch_all", "Any licence no other rule covers"


# Term types whose presence in an input binds the output's own licence.
CONFLICT_TERM_TYPES = (
    "share_alike",
    "non_commercial",
    "no_derivatives",
    "use_restrictions_passdown",
)


class Scope(models.TextChoices):
    ANY = "any", "The version's own licence and everything it inherits"
    OWN = "own", "The version's own licence only"
    INHERITED = "inherited", "Only what it inherits from ancestors and training data"


class Severity(models.TextChoices):
    ERROR = "error"
    WARNING = "warning"
    HINT = "hint"


class LicenceRule(models.Model):
    """When `condition` holds in the context (stages/uses/distributions; empty = any), report
    `message` with `severity` and `how_to_fix`. Both texts may use the placeholders listed in
    `licensing.policy.PLACEHOLDERS`."""

    policy = models.ForeignKey(LicencePolicy, on_delete=models.PROTECT, related_name="rules")
    name = models.SlugField(max_length=64)
    position = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    condition = models.CharField(max_length=32, choices=Condition.choices)
    category = models.CharField(max_length=16, choices=CATEGORY_CHOICES, blank=True)
    licence = models.ForeignKey(
        Licence, null=True, blank=True, on_delete=models.PROTECT, related_name="rules"
    )
    term_type = models.CharField(max_length=32, choices=TERM_TYPE_CHOICES, blank=True)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.ANY)
    stages = models.JSONField(default=list, blank=True, help_text="Target stages; empty = any.")
    uses = models.JSONField(
        default=list, blank=True, help_text=f"Of {', '.join(USES)}; empty = any."
    )
    distributions = models.JSONField(
        default=list, blank=True, help_text=f"Of {', '.join(DISTRIBUTIONS)}; empty = any."
    )
    severity = models.CharField(max_length=8, choices=Severity.choices)
    message = models.TextField()
    how_to_fix = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["policy_id", "position", "id"]
        verbose_name = "licence policy rule"
        constraints = [
            models.UniqueConstraint(fields=["policy", "name"], name="licence_rule_name_unique"),
            choices_check("condition", Condition, "licence_rule_condition_valid"),
            choices_check("severity", Severity, "licence_rule_severity_valid"),
            choices_check("scope", Scope, "licence_rule_scope_valid"),
            models.CheckConstraint(
                condition=Q(condition="category", category__in=CATEGORY_VALUES)
                | (~Q(condition="category") & Q(category="")),
                name="licence_rule_category_iff_category_condition",
            ),
            models.CheckConstraint(
                condition=Q(condition="licence", licence__isnull=False)
                | (~Q(condition="licence") & Q(licence__isnull=True)),
                name="licence_rule_licence_iff_licence_condition",
            ),
            models.CheckConstraint(
                condition=Q(condition="term_type", term_type__in=TERM_TYPE_VALUES)
                | Q(condition="conflict", term_type__in=CONFLICT_TERM_TYPES)
                # Naming a term type is optional here: none means every term.
                | Q(condition="upstream_training_data", term_type__in=["", *TERM_TYPE_VALUES])
                | (
                    ~Q(condition__in=["term_type", "conflict", "upstream_training_data"])
                    & Q(term_type="")
                ),
                name="licence_rule_term_type_iff_term_condition",
            ),
            models.CheckConstraint(condition=~Q(message=""), name="licence_rule_message"),
            models.CheckConstraint(condition=~Q(how_to_fix=""), name="licence_rule_fix"),
        ]

    def __str__(self) -> str:
        return self.name


# What a rule says, in the order the admin and the API show it: all its fields but the policy
# it belongs to and its timestamp.
RULE_FIELDS = (
    "name",
    "position",
    "enabled",
    "condition",
    "category",
    "licence",
    "term_type",
    "scope",
    "stages",
    "uses",
    "distributions",
    "severity",
    "message",
    "how_to_fix",
)


class LicenceWaiver(models.Model):
    """Compliance waives one rule's violations (optionally for one licence) on exact weights,
    with a reason and a named approver, until it expires."""

    version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="licence_waivers"
    )
    artefact_digest = models.CharField(max_length=64, validators=[sha256_validator])
    rule_name = models.SlugField(max_length=64)
    licence_id = models.CharField(
        max_length=128, blank=True, help_text="Only this licence's violations; empty = any."
    )
    reason = models.TextField()
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="licence_waiver_reason"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="licence_waiver_expires_later"
            ),
            models.CheckConstraint(
                condition=Q(artefact_digest__regex=SHA256_PATTERN), name="licence_waiver_digest"
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True, revoked_by__isnull=True)
                | Q(revoked_at__isnull=False, revoked_by__isnull=False),
                name="licence_waiver_revoked_who_and_when",
            ),
        ]
        indexes = [models.Index(fields=["version", "rule_name"])]

    def __str__(self) -> str:
        what = f"{self.rule_name}/{self.licence_id}" if self.licence_id else self.rule_name
        return f"waiver of {what} on {self.version}"
