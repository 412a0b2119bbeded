"""The default licence policy (revision 1); compliance staff edit it in the admin."""

from django.db import migrations


def seed(apps, schema_editor):
    from licensing.seeding import seed_default_policy

    seed_default_policy(
        apps.get_model("licensing", "LicencePolicy"),
        apps.get_model("licensing", "LicenceRule"),
        apps.get_model("licensing", "LicencePolicyRevision"),
    )


class Migration(migrations.Migration):
    dependencies = [("licensing", "0002_seed_catalogue")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
