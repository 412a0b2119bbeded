"""Seed licences, their terms and the Hub licence ids from the catalogue.

Upgrades re-seed with `manage.py licences_sync`, which runs the same function.
"""

from django.db import migrations


def seed(apps, schema_editor):
    from licensing.seeding import seed_catalogue

    seed_catalogue(
        apps.get_model("licensing", "Licence"),
        apps.get_model("licensing", "LicenceTerm"),
        apps.get_model("licensing", "HubLicenceMapping"),
    )


class Migration(migrations.Migration):
    dependencies = [("licensing", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
