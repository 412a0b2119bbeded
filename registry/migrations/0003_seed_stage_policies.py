"""Default stage policies; compliance staff change them in the admin afterwards.

Staging needs clean metadata, lineage and licence; production adds evaluation evidence and
approvals that grow with the risk tier; `unacceptable` never reaches production.
"""

from django.db import migrations

BASE = ["metadata", "lineage_health", "licence"]
DEFAULTS = {
    ("staging", "minimal"): (True, BASE, 0),
    ("staging", "limited"): (True, BASE, 0),
    ("staging", "high"): (True, [*BASE, "quality"], 0),
    ("staging", "unacceptable"): (True, [*BASE, "quality", "fairness"], 1),
    ("production", "minimal"): (True, [*BASE, "quality", "approvals"], 1),
    ("production", "limited"): (True, [*BASE, "quality", "no_negative_transfer", "approvals"], 1),
    (
        "production",
        "high",
    ): (True, [*BASE, "quality", "fairness", "no_negative_transfer", "approvals"], 2),
    ("production", "unacceptable"): (False, [], 0),
    ("archived", "minimal"): (True, [], 0),
    ("archived", "limited"): (True, [], 0),
    ("archived", "high"): (True, [], 0),
    ("archived", "unacceptable"): (True, [], 0),
}


def seed(apps, schema_editor):
    StagePolicy = apps.get_model("registry", "StagePolicy")
    for (stage, tier), (allowed, checks, approvals) in DEFAULTS.items():
        StagePolicy.objects.get_or_create(
            stage=stage,
            risk_tier=tier,
            defaults={
                "allowed": allowed,
                "required_checks": checks,
                "approvals_required": approvals,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_governance")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
